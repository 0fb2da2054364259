"""address_belongs: exact addresses in any spelling, and any host of a routed subnet."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from vpsbridge.core.ipam import address_belongs

SERVER_ADDRESSES = ["192.0.2.10", "2001:db8::10", "garbage"]
SERVER_SUBNETS = ["2001:db8:1:2::/64", "not-a-subnet"]


def test_exact_addresses_in_any_spelling() -> None:
    assert address_belongs("192.0.2.10", SERVER_ADDRESSES)
    assert address_belongs("2001:0DB8:0000::0010", SERVER_ADDRESSES)
    assert not address_belongs("192.0.2.11", SERVER_ADDRESSES)
    assert not address_belongs("not-an-ip", SERVER_ADDRESSES)


def test_subnets_grant_their_hosts_only() -> None:
    assert address_belongs("2001:db8:1:2::abcd", SERVER_ADDRESSES, SERVER_SUBNETS)
    assert not address_belongs("2001:db8:1:3::1", SERVER_ADDRESSES, SERVER_SUBNETS)
    # An IPv4 address is never inside an IPv6 subnet, not even the IPv4-mapped range.
    assert not address_belongs("192.0.2.99", [], ["::ffff:192.0.2.0/120"])


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=0, max_value=2**64 - 1))
def test_every_host_of_a_64_belongs_and_neighbours_do_not(host: int, other: int) -> None:
    network = ipaddress.IPv6Network("2001:db8:1:2::/64")
    inside = ipaddress.IPv6Address(int(network.network_address) + host)
    assert address_belongs(str(inside), [], [str(network)])
    outside = ipaddress.IPv6Address(int(network.network_address) + 2**64 + other)
    assert not address_belongs(str(outside), [], [str(network)])
