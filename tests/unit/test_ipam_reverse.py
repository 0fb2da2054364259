"""Reverse names and zone choice: property tests against dnspython plus the field's corner cases."""

from __future__ import annotations

import ipaddress
import logging

import dns.name
import dns.reversename
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpsbridge.core.ipam import (
    build_zone_index,
    find_zone,
    parse_classless_zone,
    ptr_name,
    zone_for_name,
    zone_name_problems,
)
from vpsbridge.core.ipam.classless import ZoneNameError

ipv4 = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
ipv6 = st.integers(min_value=0, max_value=2**128 - 1).map(ipaddress.IPv6Address)


@given(st.one_of(ipv4, ipv6))
def test_ptr_name_agrees_with_dnspython(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    expected = dns.reversename.from_address(str(address)).to_text()
    assert ptr_name(str(address)) == expected
    assert ptr_name(address) == expected
    # Any spelling of the same IPv6 address (compressed / exploded / upper case) gives the same name.
    assert ptr_name(address.exploded.upper()) == expected


@given(ipv6)
def test_ipv6_ptr_name_has_32_nibbles(address: ipaddress.IPv6Address) -> None:
    name = ptr_name(address)
    parts = name.split(".")
    assert parts[-3:] == ["ip6", "arpa", ""]
    assert len(parts[:-3]) == 32
    assert all(len(p) == 1 and p in "0123456789abcdef" for p in parts[:-3])


@pytest.mark.parametrize("bad", ["192.0.2.0/24", "fe80::1%eth0", "not-an-ip", "", "256.1.1.1"])
def test_ptr_name_rejects_non_addresses(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several distinct messages
        ptr_name(bad)


# --- classless parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "first", "last", "style"),
    [
        ("0/26.2.0.192.in-addr.arpa.", 0, 63, "cidr"),
        ("128/25.2.0.192.in-addr.arpa", 128, 255, "cidr"),
        ("64/64.2.0.192.in-addr.arpa.", 64, 127, "block"),
        ("128-26.2.0.192.in-addr.arpa.", 128, 191, "dash"),
        ("7/32.2.0.192.IN-ADDR.ARPA.", 7, 7, "cidr"),
        ("0/24.2.0.192.in-addr.arpa.", 0, 255, "cidr"),
        ("16/16.2.0.192.in-addr.arpa.", 16, 31, "block"),
    ],
)
def test_classless_conventions(name: str, first: int, last: int, style: str) -> None:
    zone = parse_classless_zone(name)
    assert zone is not None
    assert (zone.first, zone.last, zone.style) == (first, last, style)
    assert zone.parent == "2.0.192.in-addr.arpa."
    assert zone.name == name.lower().rstrip(".") + "."


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("3/26.2.0.192.in-addr.arpa.", "not aligned"),
        ("64/48.2.0.192.in-addr.arpa.", "power-of-two"),
        ("192/128.2.0.192.in-addr.arpa.", "not aligned"),
        ("0/26.0.192.in-addr.arpa.", "directly under a /24"),
        ("300/26.2.0.192.in-addr.arpa.", "beyond 255"),
        ("0/26.2.0.999.in-addr.arpa.", "not an address octet"),
    ],
)
def test_malformed_classless_names_are_explained(name: str, reason: str) -> None:
    with pytest.raises(ZoneNameError, match=reason):
        parse_classless_zone(name)


def test_ordinary_zones_are_not_classless() -> None:
    assert parse_classless_zone("2.0.192.in-addr.arpa.") is None
    assert parse_classless_zone("0-26.example.com.") is None


# --- find_zone ------------------------------------------------------------------------------------

ZONES = [
    "example.com.",
    "2.0.192.in-addr.arpa.",
    "0/26.2.0.192.in-addr.arpa.",
    "64/64.2.0.192.in-addr.arpa.",
    "128-26.2.0.192.in-addr.arpa.",
    "0.192.in-addr.arpa.",
    "8.b.d.0.1.0.0.2.ip6.arpa.",
    "1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
]


@pytest.mark.parametrize(
    ("ip", "zone", "record"),
    [
        ("192.0.2.10", "0/26.2.0.192.in-addr.arpa.", "10.0/26.2.0.192.in-addr.arpa."),
        ("192.0.2.64", "64/64.2.0.192.in-addr.arpa.", "64.64/64.2.0.192.in-addr.arpa."),
        ("192.0.2.127", "64/64.2.0.192.in-addr.arpa.", "127.64/64.2.0.192.in-addr.arpa."),
        ("192.0.2.130", "128-26.2.0.192.in-addr.arpa.", "130.128-26.2.0.192.in-addr.arpa."),
        ("192.0.2.200", "2.0.192.in-addr.arpa.", "200.2.0.192.in-addr.arpa."),
        ("192.0.3.1", "0.192.in-addr.arpa.", "1.3.0.192.in-addr.arpa."),
        # "12" ends with "2": a string endswith would wrongly pick 2.0.192.in-addr.arpa.
        ("192.0.12.1", "0.192.in-addr.arpa.", "1.12.0.192.in-addr.arpa."),
        ("2001:db8::5", "8.b.d.0.1.0.0.2.ip6.arpa.", ptr_name("2001:db8::5")),
        ("2001:db8:1::5", "1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", ptr_name("2001:db8:1::5")),
    ],
)
def test_find_zone_examples(ip: str, zone: str, record: str) -> None:
    assert find_zone(ip, ZONES) == (zone, record)


def test_find_zone_misses_are_none() -> None:
    assert find_zone("198.51.100.1", ZONES) is None
    assert find_zone("2001:db9::1", ZONES) is None
    assert find_zone("192.0.12.1", ["2.0.192.in-addr.arpa."]) is None


def test_find_zone_returns_the_callers_spelling() -> None:
    zones = ["2.0.192.IN-ADDR.ARPA", "0/26.2.0.192.In-Addr.Arpa"]
    assert find_zone("192.0.2.200", zones) == ("2.0.192.IN-ADDR.ARPA", "200.2.0.192.in-addr.arpa.")
    assert find_zone("192.0.2.1", zones) == ("0/26.2.0.192.In-Addr.Arpa", "1.0/26.2.0.192.in-addr.arpa.")


def test_smallest_nested_classless_zone_wins() -> None:
    zones = ["0/25.2.0.192.in-addr.arpa.", "0/27.2.0.192.in-addr.arpa.", "2.0.192.in-addr.arpa."]
    assert find_zone("192.0.2.5", zones) == ("0/27.2.0.192.in-addr.arpa.", "5.0/27.2.0.192.in-addr.arpa.")
    assert find_zone("192.0.2.40", zones) == ("0/25.2.0.192.in-addr.arpa.", "40.0/25.2.0.192.in-addr.arpa.")


def test_bad_zone_names_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    zones = [
        "3/26.2.0.192.in-addr.arpa.",  # unaligned
        "2..0.192.in-addr.arpa.",  # empty label
        "db8.2001.ip6.arpa.",  # not nibbles
        "2.0.192.in-addr.arpa.",
        "extra.zone.for.warnings.test.",
    ]
    with caplog.at_level(logging.WARNING, logger="vpsbridge.core.ipam"):
        assert find_zone("192.0.2.5", zones) == ("2.0.192.in-addr.arpa.", "5.2.0.192.in-addr.arpa.")
    problems = zone_name_problems(zones)
    assert len(problems) == 3
    assert any("not aligned" in p for p in problems)
    assert any("empty label" in p for p in problems)
    assert any("nibble" in p for p in problems)
    assert sum("ignoring zone" in r.getMessage() for r in caplog.records) == 3


# --- properties of find_zone ------------------------------------------------------------------------

prefix_len = st.integers(min_value=24, max_value=32)
style = st.sampled_from(["cidr", "block", "dash"])


@given(
    network=st.integers(min_value=0, max_value=2**24 - 1),
    plen=prefix_len,
    block_index=st.integers(min_value=0, max_value=255),
    octet=st.integers(min_value=0, max_value=255),
    spelling=style,
)
def test_classless_zone_wins_when_it_covers_and_parent_otherwise(
    network: int, plen: int, block_index: int, octet: int, spelling: str
) -> None:
    size = 1 << (32 - plen)
    start = (block_index * size) % 256
    base = ipaddress.IPv4Address(network << 8)
    parent = ".".join(reversed(str(base).split(".")[:3])) + ".in-addr.arpa."
    if spelling == "block" and size != 32:
        label = f"{start}/{size}"  # a block of exactly 32 would read as the prefix /32
    elif spelling == "dash":
        label = f"{start}-{plen}"
    else:
        label = f"{start}/{plen}"
    classless = f"{label}.{parent}"
    parsed = parse_classless_zone(classless)
    assert parsed is not None
    assert (parsed.first, parsed.last) == (start, start + size - 1)
    address = ipaddress.IPv4Address(int(base) + octet)
    expected_ptr = dns.reversename.from_address(str(address))
    result = find_zone(address, [parent, classless])
    assert result is not None
    if parsed.first <= octet <= parsed.last:
        assert result == (classless, f"{octet}.{classless}")
    else:
        assert result == (parent, expected_ptr.to_text())


@given(st.one_of(ipv4, ipv6), st.data())
def test_longest_label_suffix_wins(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, data: st.DataObject
) -> None:
    owner = dns.reversename.from_address(str(address))
    # Every proper suffix of the PTR name (down to in-addr.arpa. / ip6.arpa.) is a candidate zone.
    suffixes = [dns.name.Name(owner.labels[i:]).to_text() for i in range(1, len(owner.labels) - 2)]
    chosen = data.draw(st.lists(st.sampled_from(suffixes), min_size=1, max_size=5, unique=True))
    result = find_zone(address, chosen)
    longest = max(chosen, key=lambda z: len(z.split(".")))
    assert result == (longest, owner.to_text())


def test_zone_index_is_reused_for_the_same_list() -> None:
    assert build_zone_index(tuple(ZONES)) is build_zone_index(list(ZONES))


def test_zone_for_name_is_label_aware() -> None:
    zones = ["example.com.", "eu.example.com", "ample.com."]
    assert zone_for_name("vps1.eu.example.com", zones) == "eu.example.com"
    assert zone_for_name("VPS1.Example.COM.", zones) == "example.com."
    assert zone_for_name("example.com", zones) == "example.com."
    assert zone_for_name("example.org", zones) is None
