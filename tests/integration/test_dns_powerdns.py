"""The PowerDNS provider against a real pdns_server: classless zones, IPv6, NOTIFY, serial stability."""

from __future__ import annotations

import socket
from collections import defaultdict

import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename
import pytest
from pdns_support.admin import create_zone
from pdns_support.launcher import PdnsServer

from vpsbridge.core.ipam import find_zone
from vpsbridge.dns.errors import DnsUnavailable, DnsUnsupported, DnsZoneNotFound
from vpsbridge.dns.powerdns import PowerDnsProvider, zone_id
from vpsbridge.dns.records import Change
from vpsbridge.http import UpstreamRecord

pytest_plugins = ["pdns_support.fixtures"]

PARENT = "2.0.192.in-addr.arpa."
CIDR = "0/26.2.0.192.in-addr.arpa."
BLOCK = "64/64.2.0.192.in-addr.arpa."
DASH = "128-26.2.0.192.in-addr.arpa."
IP6 = "8.b.d.0.1.0.0.2.ip6.arpa."

HOSTS = {
    "192.0.2.10": "vps10.example.com.",
    "192.0.2.70": "vps70.example.com.",
    "192.0.2.130": "vps130.example.com.",
    "192.0.2.200": "vps200.example.com.",
    "2001:db8::1:2": "vps6.example.com.",
}


def rfc2317_parent_rrsets() -> list[dict[str, object]]:
    """The /24 owner's side of the delegations: NS for each classless zone plus a CNAME per address."""
    rrsets: list[dict[str, object]] = []
    for child, first, last in ((CIDR, 0, 63), (BLOCK, 64, 127), (DASH, 128, 191)):
        rrsets.append(
            {
                "name": child,
                "type": "NS",
                "ttl": 3600,
                "records": [{"content": "ns1.example.net.", "disabled": False}],
            }
        )
        for octet in range(first, last + 1):
            rrsets.append(
                {
                    "name": f"{octet}.{PARENT}",
                    "type": "CNAME",
                    "ttl": 3600,
                    "records": [{"content": f"{octet}.{child}", "disabled": False}],
                }
            )
    return rrsets


def make_zones(server: PdnsServer) -> dict[str, str]:
    ids = {}
    for name in (CIDR, BLOCK, DASH):
        ids[name] = create_zone(server, name)["id"]
    ids[PARENT] = create_zone(server, PARENT, rrsets=rfc2317_parent_rrsets())["id"]
    ids[IP6] = create_zone(server, IP6, kind="Master")["id"]
    ids["example.com."] = create_zone(server, "example.com.")["id"]
    return ids


def resolver_for(server: PdnsServer) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.dns_port
    resolver.lifetime = 3
    return resolver


async def sync(provider: PowerDnsProvider, hosts: dict[str, str]) -> dict[str, object]:
    """Place every address in its zone and apply one batch per zone (what the reconcile job does)."""
    names = await provider.zone_names()
    batches: dict[str, list[Change]] = defaultdict(list)
    for ip, host in hosts.items():
        found = find_zone(ip, names)
        assert found is not None, ip
        zone, owner = found
        batches[zone].append(Change.replace(owner, "PTR", host, ttl=300))
    return {zone: await provider.apply(zone, changes) for zone, changes in batches.items()}


def patches(records: list[UpstreamRecord]) -> list[UpstreamRecord]:
    return [r for r in records if r.method == "PATCH"]


async def test_zone_ids_match_the_server(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    ids = make_zones(pdns)
    for name, server_id in ids.items():
        assert zone_id(name) == server_id
    assert ids[CIDR] == "0=2F26.2.0.192.in-addr.arpa."
    listed = {z.name: z.id for z in await powerdns.zones()}
    assert listed == ids


async def test_ptrs_written_read_back_resolved_and_notified(
    pdns: PdnsServer, powerdns: PowerDnsProvider, pdns_records: list[UpstreamRecord]
) -> None:
    make_zones(pdns)
    serials_before = {z: await powerdns.serial(z) for z in (PARENT, CIDR, BLOCK, DASH, IP6)}
    results = await sync(powerdns, HOSTS)

    assert set(results) == {CIDR, BLOCK, DASH, PARENT, IP6}
    for result in results.values():
        assert result.ok
        assert result.changed
        assert result.notified is True
    assert len(patches(pdns_records)) == 5  # one PATCH per zone

    # Read back through the API, in the zone find_zone chose.
    expected_owner = {
        "192.0.2.10": f"10.{CIDR}",
        "192.0.2.70": f"70.{BLOCK}",
        "192.0.2.130": f"130.{DASH}",
        "192.0.2.200": f"200.{PARENT}",
    }
    names = await powerdns.zone_names()
    for ip, host in HOSTS.items():
        found = find_zone(ip, names)
        assert found is not None
        zone, owner = found
        if ip in expected_owner:
            assert owner == expected_owner[ip]
        rrset = await powerdns.get_rrset(zone, owner, "PTR")
        assert rrset is not None
        assert rrset.records == (host,)
        assert rrset.ttl == 300

    # Resolved over DNS by the server itself: the parent's RFC 2317 CNAMEs lead into the classless zones.
    resolver = resolver_for(pdns)
    for ip, host in HOSTS.items():
        answer = resolver.resolve(dns.reversename.from_address(ip), "PTR")
        assert [r.to_text() for r in answer] == [host]

    for zone in (PARENT, CIDR, BLOCK, DASH, IP6):
        assert pdns.notify.wait_for(zone), f"no NOTIFY for {zone}: {pdns.notify.zones()}"
        assert await powerdns.serial(zone) > serials_before[zone]


async def test_second_identical_sync_changes_nothing(
    pdns: PdnsServer, powerdns: PowerDnsProvider, pdns_records: list[UpstreamRecord]
) -> None:
    make_zones(pdns)
    await sync(powerdns, HOSTS)
    serials = {z: await powerdns.serial(z) for z in (PARENT, CIDR, BLOCK, DASH, IP6)}
    pdns_records.clear()
    pdns.notify.clear()

    results = await sync(powerdns, HOSTS)

    for result in results.values():
        assert not result.changed
        assert result.notified is None
        assert len(result.unchanged) == 1  # type: ignore[attr-defined]
    assert patches(pdns_records) == []
    assert not any(r.url.endswith("/notify") for r in pdns_records)
    assert {z: await powerdns.serial(z) for z in serials} == serials


async def test_case_and_dot_differences_are_not_changes(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    create_zone(pdns, PARENT)
    first = await powerdns.apply(PARENT, [Change.replace(f"5.{PARENT}", "PTR", "Host.Example.COM.", ttl=300)])
    assert first.changed
    serial = await powerdns.serial(PARENT)
    again = await powerdns.apply(PARENT, [Change.replace(f"5.{PARENT}".upper(), "ptr", "host.example.com")])
    # A different TTL is a real change; the spelling of names is not.
    assert again.changed
    third = await powerdns.apply(PARENT, [Change.replace(f"5.{PARENT}", "PTR", "HOST.example.com", ttl=3600)])
    assert not third.changed
    assert await powerdns.serial(PARENT) == serial + 1


async def test_delete_and_repeat_delete(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    create_zone(pdns, IP6)
    owner = dns.reversename.from_address("2001:db8::99").to_text()
    await powerdns.apply(IP6, [Change.replace(owner, "PTR", "v6.example.com.")])
    assert await powerdns.get_rrset(IP6, owner, "PTR") is not None
    removed = await powerdns.apply(IP6, [Change.delete(owner, "PTR")])
    assert removed.changed
    assert await powerdns.get_rrset(IP6, owner, "PTR") is None
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver_for(pdns).resolve(owner, "PTR")
    repeat = await powerdns.apply(IP6, [Change.delete(owner, "PTR")])
    assert not repeat.changed
    assert repeat.unchanged


async def test_one_refused_record_does_not_sink_the_batch(
    pdns: PdnsServer, powerdns: PowerDnsProvider
) -> None:
    make_zones(pdns)
    # 192.0.2.10 is delegated: the parent holds a CNAME there, so a PTR in the parent conflicts.
    changes = [
        Change.replace(f"10.{PARENT}", "PTR", "wrong.example.com."),
        Change.replace(f"200.{PARENT}", "PTR", "right.example.com."),
    ]
    result = await powerdns.apply(PARENT, changes)
    assert [c.name for c in result.applied] == [f"200.{PARENT}"]
    assert len(result.failed) == 1
    change, message = result.failed[0]
    assert change.name == f"10.{PARENT}"
    assert "Conflicts with pre-existing RRset" in message
    assert "classless zone" in message
    assert (await powerdns.get_rrset(PARENT, f"200.{PARENT}", "PTR")) is not None


async def test_forward_records(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    create_zone(pdns, "example.com.")
    result = await powerdns.apply(
        "example.com.",
        [
            Change.replace("vps1.example.com.", "A", "192.0.2.10", ttl=300),
            Change.replace("vps1.example.com.", "AAAA", "2001:0db8:0000::0001:0002", ttl=300),
        ],
    )
    assert result.ok
    assert len(result.applied) == 2
    resolver = resolver_for(pdns)
    assert [r.to_text() for r in resolver.resolve("vps1.example.com.", "AAAA")] == ["2001:db8::1:2"]
    assert [r.to_text() for r in resolver.resolve("vps1.example.com.", "A")] == ["192.0.2.10"]


async def test_comment_is_kept_with_our_account(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    create_zone(pdns, PARENT)
    owner = f"7.{PARENT}"
    await powerdns.apply(PARENT, [Change.replace(owner, "PTR", "a.example.com.", comment="service 42")])
    rrset = await powerdns.get_rrset(PARENT, owner, "PTR")
    assert rrset is not None
    assert rrset.comment == "service 42"
    # A later change without a comment leaves it alone.
    await powerdns.apply(PARENT, [Change.replace(owner, "PTR", "b.example.com.")])
    rrset = await powerdns.get_rrset(PARENT, owner, "PTR")
    assert rrset is not None
    assert rrset.comment == "service 42"
    assert rrset.records == ("b.example.com.",)


async def test_errors_are_readable(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    create_zone(pdns, PARENT)
    with pytest.raises(DnsZoneNotFound, match=r"3\.0\.192\.in-addr\.arpa\. does not exist"):
        await powerdns.apply(
            "3.0.192.in-addr.arpa.", [Change.replace("1.3.0.192.in-addr.arpa.", "PTR", "a.b.c.")]
        )
    with pytest.raises(DnsUnsupported, match="outside zone"):
        await powerdns.apply(PARENT, [Change.replace("1.3.0.192.in-addr.arpa.", "PTR", "a.b.c.")])


async def test_connection_report(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    create_zone(pdns, PARENT, soa_edit_api="")
    create_zone(pdns, CIDR)
    report = await powerdns.test_connection()
    assert report.ok
    assert report.version is not None
    assert report.version.startswith("4.")
    assert set(report.zones) == {PARENT, CIDR}
    assert len(report.warnings) == 1
    assert PARENT in report.warnings[0]
    assert "SOA-EDIT-API" in report.warnings[0]


async def test_wrong_key_and_wrong_server_id(pdns: PdnsServer) -> None:
    bad_key = PowerDnsProvider.from_config(
        url=pdns.api_url, credentials={"api_key": "nope-nope"}, settings={}
    )
    report = await bad_key.test_connection()
    await bad_key.aclose()
    assert not report.ok
    assert "api-allow-from" in report.message
    assert "nope-nope" not in report.message

    bad_id = PowerDnsProvider.from_config(
        url=pdns.api_url + "/api/v1", credentials={"api_key": pdns.api_key}, settings={"server_id": "ns1"}
    )
    report = await bad_id.test_connection()
    await bad_id.aclose()
    assert not report.ok
    assert "'localhost'" in report.message


async def test_unreachable_server_is_unknown_not_missing() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = PowerDnsProvider.from_config(
        url=f"http://127.0.0.1:{port}", credentials={"api_key": "k" * 16}, settings={"max_retries": 0}
    )
    try:
        with pytest.raises(DnsUnavailable):
            await provider.zones()
        report = await provider.test_connection()
        assert not report.ok
        assert "cannot talk" in report.message
    finally:
        await provider.aclose()
