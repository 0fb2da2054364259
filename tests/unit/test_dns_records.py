"""Record normalisation, change planning helpers, zone ids and provider construction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpsbridge.dns.base import ZoneInfo
from vpsbridge.dns.cloudflare import CloudflareProvider
from vpsbridge.dns.errors import DnsConfigError, DnsRecordRejected, DnsUnsupported, translate
from vpsbridge.dns.hestiacp import HestiaProvider
from vpsbridge.dns.powerdns import PowerDnsProvider, api_base, rejection_hint, zone_id
from vpsbridge.dns.records import Change, RRset, dedupe_changes, normalize_content
from vpsbridge.dns.registry import PROVIDER_TYPES, create_provider
from vpsbridge.http import UpstreamRejected, tri_state


@pytest.mark.parametrize(
    ("rtype", "given_content", "expected"),
    [
        ("PTR", "VPS1.Example.COM", "vps1.example.com."),
        ("ptr", " vps1.example.com. ", "vps1.example.com."),
        ("CNAME", "target.example.net", "target.example.net."),
        ("A", "192.0.2.1", "192.0.2.1"),
        ("AAAA", "2001:0DB8:0000::0001", "2001:db8::1"),
        ("TXT", '"v=spf1  -all"', '"v=spf1 -all"'),
    ],
)
def test_normalize_content(rtype: str, given_content: str, expected: str) -> None:
    assert normalize_content(rtype, given_content) == expected


@pytest.mark.parametrize(
    ("rtype", "bad"), [("A", "192.0.2.300"), ("AAAA", "192.0.2.1"), ("PTR", "a b.c"), ("PTR", "")]
)
def test_normalize_content_rejects(rtype: str, bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ipaddress and our own messages differ
        normalize_content(rtype, bad)


def test_change_satisfied_by() -> None:
    change = Change.replace("10.2.0.192.IN-ADDR.ARPA", "ptr", "Host.example.com", ttl=300)
    assert change.name == "10.2.0.192.in-addr.arpa."
    assert change.type == "PTR"
    assert change.records == ("host.example.com.",)
    same = RRset.build("10.2.0.192.in-addr.arpa.", "PTR", ["HOST.example.com."], 300)
    assert change.satisfied_by(same)
    assert not change.satisfied_by(None)
    assert not change.satisfied_by(RRset.build("10.2.0.192.in-addr.arpa.", "PTR", ["host.example.com"], 600))
    commented = Change.replace(
        "10.2.0.192.in-addr.arpa.", "PTR", "host.example.com", ttl=300, comment="svc 7"
    )
    assert not commented.satisfied_by(same)
    delete = Change.delete("10.2.0.192.in-addr.arpa", "PTR")
    assert delete.satisfied_by(None)
    assert not delete.satisfied_by(same)
    with pytest.raises(ValueError, match=r"Change\.delete"):
        Change.replace("x.example.com.", "A", [])


def test_dedupe_keeps_the_last_change_and_puts_deletes_first() -> None:
    changes = [
        Change.replace("a.example.com.", "A", "192.0.2.1"),
        Change.replace("b.example.com.", "A", "192.0.2.2"),
        Change.delete("c.example.com.", "CNAME"),
        Change.replace("A.example.com", "a", "192.0.2.9"),
    ]
    result = dedupe_changes(changes)
    assert [(c.action, c.name) for c in result] == [
        ("delete", "c.example.com."),
        ("replace", "b.example.com."),
        ("replace", "a.example.com."),
    ]
    assert result[2].records == ("192.0.2.9",)


# --- PowerDNS zone ids ---------------------------------------------------------------------------


def test_zone_id_examples() -> None:
    assert zone_id("0/26.2.0.192.in-addr.arpa") == "0=2F26.2.0.192.in-addr.arpa."
    assert zone_id("_tcp.example.com.") == "=5Ftcp.example.com."
    assert zone_id("a=b.example.") == "a=3Db.example."
    assert zone_id(".") == "=2E"  # PowerDNS's id for the root zone


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30))
def test_zone_id_uses_only_safe_characters_and_uppercase_hex(label: str) -> None:
    encoded = zone_id(f"{label}.example.")
    escapes = [encoded[i + 1 : i + 3] for i, ch in enumerate(encoded) if ch == "="]
    assert all(len(e) == 2 and e == e.upper() and int(e, 16) >= 0 for e in escapes)
    stripped = encoded
    for e in escapes:
        stripped = stripped.replace("=" + e, "", 1)
    assert all(ch.isalnum() or ch in ".-" for ch in stripped)


def test_api_base_accepts_the_usual_spellings() -> None:
    for url in ("http://ns1:8081", "http://ns1:8081/", "http://ns1:8081/api", "http://ns1:8081/api/v1/"):
        assert api_base(url) == "http://ns1:8081/api/v1"


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        ("Record x/PTR 'a.b': Not in expected format (parsed as 'a.b.')", "ending in a dot"),
        ("RRset 1.3.0.192.in-addr.arpa. IN PTR: Name is out of zone", "not inside this zone"),
        ("RRset 10.2.0.192.in-addr.arpa. IN PTR: Conflicts with pre-existing RRset", "classless zone"),
        ("DNS Name '1.2.0.192.in-addr.arpa' is not canonical", "end with a dot"),
        ("something else entirely", ""),
    ],
)
def test_rejection_hints(message: str, needle: str) -> None:
    hint = rejection_hint(message)
    assert needle in hint
    if not needle:
        assert hint == ""


# --- errors and registry --------------------------------------------------------------------------


async def test_dns_errors_fold_into_the_tri_state() -> None:
    upstream = UpstreamRejected("powerdns: PATCH -> 422: Name is out of zone", status=422)
    error = translate(upstream, provider="pdns", zone="z.", hint="wrong zone")
    assert isinstance(error, DnsRecordRejected)
    assert "wrong zone" in str(error)
    assert error.status == 422

    async def fails() -> None:
        raise error

    outcome = await tri_state(fails())
    assert type(outcome).__name__ == "Unknown"


def test_registry_knows_three_providers_and_validates_config() -> None:
    assert set(PROVIDER_TYPES) == {"powerdns", "cloudflare", "hestiacp"}
    with pytest.raises(DnsConfigError, match="unknown DNS provider type 'bind'"):
        create_provider("bind", url="x", credentials={})
    with pytest.raises(DnsConfigError, match="api_key"):
        create_provider("powerdns", url="http://ns1:8081", credentials={"api_key": "  "})
    with pytest.raises(DnsConfigError, match="URL is missing"):
        create_provider("PowerDNS", url="", credentials={"api_key": "k"})
    with pytest.raises(DnsConfigError, match="whole number"):
        create_provider(
            "powerdns", url="http://ns1:8081", credentials={"api_key": "k"}, settings={"default_ttl": "x"}
        )


def test_classless_capabilities() -> None:
    pdns = create_provider("powerdns", url="http://ns1:8081", credentials={"api_key": "key"})
    assert isinstance(pdns, PowerDnsProvider)
    for zone in ("0/26.2.0.192.in-addr.arpa.", "64/64.2.0.192.in-addr.arpa.", "128-26.2.0.192.in-addr.arpa."):
        pdns.check_zone_supported(zone)
    with pytest.raises(DnsConfigError, match="not aligned"):
        pdns.check_zone_supported("3/26.2.0.192.in-addr.arpa.")
    cloudflare = create_provider("cloudflare", url=None, credentials={"api_token": "t"})
    assert isinstance(cloudflare, CloudflareProvider)
    cloudflare.check_zone_supported("2.0.192.in-addr.arpa.")
    with pytest.raises(DnsUnsupported, match=r"range 128-191 of 2\.0\.192\.in-addr\.arpa\."):
        cloudflare.check_zone_supported("128-26.2.0.192.in-addr.arpa.")
    hestia = create_provider(
        "hestiacp", url="https://p:8083", credentials={"access_key": "a", "secret_key": "s"}
    )
    assert isinstance(hestia, HestiaProvider)
    hestia.check_zone_supported("128-26.2.0.192.in-addr.arpa.")
    with pytest.raises(DnsUnsupported, match="cidr spelling"):
        hestia.check_zone_supported("128/26.2.0.192.in-addr.arpa.")


def test_zone_info_reverse_flag() -> None:
    assert ZoneInfo("2.0.192.in-addr.arpa.", "x").is_reverse
    assert ZoneInfo("8.b.d.0.1.0.0.2.ip6.arpa.", "x").is_reverse
    assert not ZoneInfo("example.com.", "x").is_reverse
