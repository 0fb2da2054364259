"""reverse_zone_hint: the zone to create for aligned prefixes, a precise instruction otherwise."""

from __future__ import annotations

import pytest

from vpsbridge.core.ipam import find_zone, reverse_zone_advice, reverse_zone_hint


@pytest.mark.parametrize(
    ("prefix", "zone"),
    [
        ("192.0.2.0/24", "2.0.192.in-addr.arpa."),
        ("192.0.2.77/24", "2.0.192.in-addr.arpa."),
        ("172.16.0.0/16", "16.172.in-addr.arpa."),
        ("10.0.0.0/8", "10.in-addr.arpa."),
        ("2001:db8::/32", "8.b.d.0.1.0.0.2.ip6.arpa."),
        ("2001:db8:1:2::/64", "2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."),
        ("2001:db8:abc::/48", "c.b.a.0.8.b.d.0.1.0.0.2.ip6.arpa."),
    ],
)
def test_aligned_prefixes_name_their_zone(prefix: str, zone: str) -> None:
    assert reverse_zone_hint(prefix) == zone
    # The hinted zone really is the one find_zone would pick for an address of the prefix.
    first = prefix.split("/")[0]
    result = find_zone(first, [zone])
    assert result is not None
    assert result[0] == zone


def test_small_ipv4_prefix_explains_classless_delegation() -> None:
    advice = reverse_zone_advice("192.0.2.64/26")
    assert advice.zones == ()
    assert advice.classless == ("64/26.2.0.192.in-addr.arpa.", "64-26.2.0.192.in-addr.arpa.")
    hint = reverse_zone_hint("192.0.2.64/26")
    assert "RFC 2317" in hint
    assert "64/26.2.0.192.in-addr.arpa." in hint
    assert "2.0.192.in-addr.arpa." in hint
    assert "64..127" in hint
    # The names suggested are accepted by find_zone as classless zones covering the prefix.
    for name in advice.classless:
        assert find_zone("192.0.2.100", [name, "2.0.192.in-addr.arpa."]) == (name, f"100.{name}")


def test_unaligned_ipv4_prefix_lists_every_zone() -> None:
    advice = reverse_zone_advice("192.0.0.0/22")
    assert advice.zones == tuple(f"{n}.0.192.in-addr.arpa." for n in range(4))
    assert "octet boundary" in advice.message
    assert "4 zones" in reverse_zone_hint("192.0.0.0/22")


def test_unaligned_ipv6_prefix_rounds_to_nibbles() -> None:
    advice = reverse_zone_advice("2001:db8::/62")
    assert len(advice.zones) == 4
    assert advice.zones[3] == "3.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
    assert "nibble boundary" in advice.message


def test_long_listings_are_abbreviated() -> None:
    hint = reverse_zone_hint("10.0.0.0/12")
    assert "16 zones" in hint
    assert "0.10.in-addr.arpa." in hint
    assert "15.10.in-addr.arpa." in hint
    assert "7.10.in-addr.arpa." not in hint


def test_invalid_prefix_raises() -> None:
    with pytest.raises(ValueError, match="does not appear"):
        reverse_zone_hint("not-a-prefix")
