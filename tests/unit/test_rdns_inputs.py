"""Pure helpers of the rDNS service: host name checks, address splitting, private ranges."""

from __future__ import annotations

import pytest

from vpsbridge.services.dns.addresses import is_private, split_entries
from vpsbridge.services.dns.client import check_hostname
from vpsbridge.services.errors import Invalid


@pytest.mark.parametrize(
    ("value", "expected"),
    [("vps1.example.com", "vps1.example.com."), ("A-1.Example.NET.", "a-1.example.net.")],
)
def test_check_hostname_accepts(value: str, expected: str) -> None:
    assert check_hostname(value) == expected


@pytest.mark.parametrize(
    "value", ["", "localhost", "a_b.example.com", "-a.example.com", "a-.example.com", "10.0.0.1", "a b.com"]
)
def test_check_hostname_refuses(value: str) -> None:
    with pytest.raises(Invalid):
        check_hostname(value)


def test_split_entries() -> None:
    hosts, subnets = split_entries(
        ["192.0.2.1", "2001:db8::1/128", "2001:db8:1::/64", "2001:DB8:1::7/64", "junk", "192.0.2.1"]
    )
    assert hosts == ["192.0.2.1", "2001:db8::1"]
    assert subnets == ["2001:db8:1::/64"]


def test_private_ranges_exclude_documentation_ranges() -> None:
    assert is_private("10.1.2.3")
    assert is_private("100.64.0.1")
    assert is_private("fd00::1")
    assert not is_private("192.0.2.10")
    assert not is_private("2001:db8::1")
