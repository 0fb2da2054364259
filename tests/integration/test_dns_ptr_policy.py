"""Forward lookups, forward confirmation and PTR sync modes against a real pdns_server."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from pdns_support.admin import admin_client, create_zone
from pdns_support.launcher import PdnsServer

from vpsbridge.cache.memory import MemoryCache
from vpsbridge.core.ipam import ptr_name
from vpsbridge.dns.errors import DnsUnavailable
from vpsbridge.dns.forward import sync_forward
from vpsbridge.dns.powerdns import PowerDnsProvider
from vpsbridge.dns.ptr import ForwardConfirmer, ptr_status, rename_decision, sync_ptrs
from vpsbridge.dns.records import ApplyResult, Change, RRset
from vpsbridge.dns.resolver import ForwardResolver
from vpsbridge.http import UpstreamRecord

pytest_plugins = ["pdns_support.fixtures"]

PARENT = "2.0.192.in-addr.arpa."
CIDR = "0/26.2.0.192.in-addr.arpa."
IP6 = "8.b.d.0.1.0.0.2.ip6.arpa."


def rr(name: str, rtype: str, *contents: str) -> dict[str, object]:
    return {
        "name": name,
        "type": rtype,
        "ttl": 60,
        "records": [{"content": c, "disabled": False} for c in contents],
    }


def forward_zone(server: PdnsServer) -> None:
    chain = [rr(f"c{i}.example.com.", "CNAME", f"c{i + 1}.example.com.") for i in range(1, 5)]
    chain.append(rr("c5.example.com.", "CNAME", "vps1.example.com."))
    long_chain = [rr(f"l{i}.example.com.", "CNAME", f"l{i + 1}.example.com.") for i in range(1, 6)]
    long_chain.append(rr("l6.example.com.", "CNAME", "vps1.example.com."))
    create_zone(
        server,
        "example.com.",
        rrsets=[
            rr("vps1.example.com.", "A", "192.0.2.10"),
            rr("vps1.example.com.", "AAAA", "2001:db8::10"),
            rr("vps2.example.com.", "A", "192.0.2.20"),
            rr("alias.example.com.", "CNAME", "c1.example.com."),
            *chain,
            rr("toolong.example.com.", "CNAME", "l1.example.com."),
            *long_chain,
            rr("loop1.example.com.", "CNAME", "loop2.example.com."),
            rr("loop2.example.com.", "CNAME", "loop1.example.com."),
            rr("txtonly.example.com.", "TXT", '"hello"'),
            rr("away.example.com.", "CNAME", "host.example.org."),
        ],
    )
    create_zone(server, "example.org.", rrsets=[rr("host.example.org.", "A", "192.0.2.30")])


def resolver_for(server: PdnsServer) -> ForwardResolver:
    return ForwardResolver(nameservers=["127.0.0.1"], port=server.dns_port, timeout=2)


async def test_forward_lookups(pdns: PdnsServer) -> None:
    forward_zone(pdns)
    resolver = resolver_for(pdns)
    direct = await resolver.lookup("VPS1.example.com")
    assert direct.status == "ok"
    assert direct.has("192.0.2.10")
    assert direct.has("2001:0db8::0010")
    via_five = await resolver.lookup("c1.example.com.")
    assert via_five.status == "ok"
    assert len(via_five.cnames) == 5
    assert via_five.has("192.0.2.10")
    assert (await resolver.lookup("alias.example.com.")).status == "cname_loop"  # six CNAMEs
    assert (await resolver.lookup("toolong.example.com.")).status == "cname_loop"
    # pdns itself answers SERVFAIL for a loop inside its zones: indistinguishable from an outage.
    assert (await resolver.lookup("loop1.example.com.")).status == "error"
    assert (await resolver.lookup("txtonly.example.com.")).status == "nodata"
    assert (await resolver.lookup("nothere.example.com.")).status == "nxdomain"
    away = await resolver.lookup("away.example.com.")
    assert away.status == "ok"
    assert away.has("192.0.2.30")
    assert await resolver.resolves_to("vps2.example.com", "192.0.2.20")
    assert not await resolver.resolves_to("vps2.example.com", "192.0.2.21")


async def test_unreachable_nameserver_is_an_error_not_an_answer() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        resolver = ForwardResolver(nameservers=["127.0.0.1"], port=port, timeout=0.2)
        result = await resolver.lookup("vps1.example.com.")
    assert result.status == "error"
    assert not result.definite
    confirmer = ForwardConfirmer(resolver, MemoryCache())
    assert await confirmer.confirms("vps1.example.com.", "192.0.2.10") is None
    assert await confirmer.cache.get(confirmer._key("vps1.example.com.")) is None  # type: ignore[union-attr]


async def test_confirmer_caches_and_a_forward_write_beats_a_negative(pdns: PdnsServer) -> None:
    forward_zone(pdns)
    now = [1000.0]
    cache = MemoryCache(clock=lambda: now[0])
    confirmer = ForwardConfirmer(resolver_for(pdns), cache, positive_ttl=300, negative_ttl=30)
    assert await confirmer.confirms("new.example.com.", "192.0.2.40") is False  # NXDOMAIN, cached
    # The record appears on the server, but the negative is still cached ...
    with admin_client(pdns) as admin:
        body = {"rrsets": [{**rr("new.example.com.", "A", "192.0.2.40"), "changetype": "REPLACE"}]}
        assert admin.patch("/zones/example.com.", json=body).status_code == 204
    assert await confirmer.confirms("new.example.com.", "192.0.2.40") is False
    # ... until the short negative TTL runs out.
    now[0] += 31
    assert await confirmer.confirms("new.example.com.", "192.0.2.40") is True
    # A positive lasts longer, and our own forward write replaces whatever was cached.
    assert await confirmer.confirms("fresh.example.com.", "192.0.2.50") is False
    await confirmer.record_forward_write("fresh.example.com", ["192.0.2.50", "2001:db8::50"])
    assert await confirmer.confirms("fresh.example.com.", "2001:db8:0::50") is True


def test_rename_decision() -> None:
    def rrset(*contents: str) -> RRset:
        return RRset.build("1.2.0.192.in-addr.arpa.", "PTR", list(contents), 300)

    assert rename_decision(None, "old.example.com", "new.example.com") == "written"
    assert rename_decision(rrset("OLD.example.com."), "old.example.com", "new.example.com") == "written"
    assert rename_decision(rrset("new.example.com."), "old.example.com", "new.example.com") == "unchanged"
    assert rename_decision(rrset("mail.client.net."), "old.example.com", "new.example.com") == "preserved"
    assert rename_decision(rrset("mail.client.net."), None, "new.example.com") == "preserved"


async def setup_reverse(pdns: PdnsServer) -> None:
    forward_zone(pdns)
    create_zone(pdns, PARENT)
    create_zone(pdns, CIDR)
    create_zone(pdns, IP6)


async def test_provision_with_forward_confirmation(
    pdns: PdnsServer, powerdns: PowerDnsProvider, pdns_records: list[UpstreamRecord]
) -> None:
    await setup_reverse(pdns)
    confirmer = ForwardConfirmer(resolver_for(pdns), MemoryCache())
    ips = ["192.0.2.10", "2001:db8::10", "192.0.2.99", "198.51.100.1"]
    pdns_records.clear()
    report = await sync_ptrs(
        powerdns, ips, "vps1.example.com", mode="provision", confirmer=confirmer, ttl=120
    )
    outcomes = {e.ip: e.outcome for e in report.entries}
    assert outcomes == {
        "192.0.2.10": "written",
        "2001:db8::10": "written",
        "192.0.2.99": "unverified",  # vps1 does not resolve to .99
        "198.51.100.1": "no_zone",
    }
    assert report.by_ip()["192.0.2.10"].zone == CIDR
    assert sum(r.method == "PATCH" for r in pdns_records) == 2  # one per zone with something to write
    rrset = await powerdns.get_rrset(IP6, ptr_name("2001:db8::10"), "PTR")
    assert rrset is not None
    assert rrset.records == ("vps1.example.com.",)
    assert rrset.ttl == 120


async def test_rename_keeps_custom_ptrs(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    await setup_reverse(pdns)
    await powerdns.apply(
        PARENT,
        [
            Change.replace(f"100.{PARENT}", "PTR", "old.example.com."),
            Change.replace(f"101.{PARENT}", "PTR", "mail.customer.net."),
        ],
    )
    ips = ["192.0.2.100", "192.0.2.101", "192.0.2.102", "192.0.2.103", "192.0.2.104"]
    report = await sync_ptrs(powerdns, ips, "new.example.com", mode="rename", old_hostname="old.example.com")
    outcomes = {e.ip: e.outcome for e in report.entries}
    assert outcomes == {
        "192.0.2.100": "written",
        "192.0.2.101": "preserved",
        "192.0.2.102": "written",
        "192.0.2.103": "written",
        "192.0.2.104": "written",
    }
    custom = await powerdns.get_rrset(PARENT, f"101.{PARENT}", "PTR")
    assert custom is not None
    assert custom.records == ("mail.customer.net.",)


async def test_reconcile_is_additive_and_force_resets(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    await setup_reverse(pdns)
    await powerdns.apply(PARENT, [Change.replace(f"110.{PARENT}", "PTR", "custom.customer.net.")])
    ips = ["192.0.2.110", "192.0.2.111"]
    report = await sync_ptrs(powerdns, ips, "vps.example.com", mode="reconcile")
    assert [e.outcome for e in report.entries] == ["preserved", "written"]
    again = await sync_ptrs(powerdns, ips, "vps.example.com", mode="reconcile")
    assert [e.outcome for e in again.entries] == ["preserved", "unchanged"]
    forced = await sync_ptrs(powerdns, ips, "vps.example.com", mode="force")
    assert [e.outcome for e in forced.entries] == ["written", "unchanged"]
    gone = await sync_ptrs(powerdns, ips, None, mode="delete")
    assert [e.outcome for e in gone.entries] == ["deleted", "deleted"]
    repeat = await sync_ptrs(powerdns, ips, None, mode="delete")
    assert [e.outcome for e in repeat.entries] == ["absent", "absent"]


async def test_a_broken_zone_does_not_stop_the_others(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    await setup_reverse(pdns)
    powerdns.zone_cache_seconds = 3600
    await powerdns.zones(refresh=True)
    with admin_client(pdns) as admin:  # the zone disappears behind our cached zone list
        assert admin.delete("/zones/0=2F26.2.0.192.in-addr.arpa.").status_code == 204
    report = await sync_ptrs(powerdns, ["192.0.2.5", "192.0.2.200"], "vps.example.com", mode="provision")
    by_ip = report.by_ip()
    assert by_ip["192.0.2.5"].outcome == "error"
    assert "does not exist" in by_ip["192.0.2.5"].message
    assert by_ip["192.0.2.200"].outcome == "written"
    assert not report.ok
    assert CIDR in report.zone_messages


async def test_ptr_status(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    await setup_reverse(pdns)
    await powerdns.apply(
        PARENT,
        [
            Change.replace(f"120.{PARENT}", "PTR", "vps2.example.com."),
            Change.replace(f"121.{PARENT}", "PTR", "vps2.example.com."),
        ],
    )
    confirmer = ForwardConfirmer(resolver_for(pdns))
    statuses = await ptr_status(
        powerdns, ["192.0.2.20", "192.0.2.120", "192.0.2.121", "198.51.100.7"], confirmer
    )
    assert [(s.ip, s.state) for s in statuses] == [
        ("192.0.2.20", "missing"),
        ("192.0.2.120", "unverified"),
        ("192.0.2.121", "unverified"),
        ("198.51.100.7", "no_zone"),
    ]
    await powerdns.apply(CIDR, [Change.replace(f"20.{CIDR}", "PTR", "vps2.example.com.")])
    (status,) = await ptr_status(powerdns, ["192.0.2.20"], confirmer)
    assert status.state == "ok"
    assert status.ptr == "vps2.example.com"
    assert status.zone == CIDR


async def test_forward_write_then_ptr_in_one_job(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    """A negative cached before the forward write never blocks the PTR written after it."""
    await setup_reverse(pdns)
    confirmer = ForwardConfirmer(resolver_for(pdns), MemoryCache(), negative_ttl=3600)
    ips = ["192.0.2.150", "2001:db8::150"]
    assert await confirmer.confirms("web1.example.com.", ips[0]) is False  # negative now cached

    early = await sync_ptrs(powerdns, ips, "web1.example.com", mode="provision", confirmer=confirmer)
    assert [e.outcome for e in early.entries] == ["unverified", "unverified"]

    forward = await sync_forward(powerdns, "web1.example.com", ips, confirmer=confirmer)
    assert forward.ok
    assert forward.zone == "example.com."
    report = await sync_ptrs(powerdns, ips, "web1.example.com", mode="provision", confirmer=confirmer)
    assert [e.outcome for e in report.entries] == ["written", "written"]
    # And the world agrees: the records really are on the server.
    assert await resolver_for(pdns).resolves_to("web1.example.com", "2001:db8::150")


async def test_forward_prune_and_errors(pdns: PdnsServer, powerdns: PowerDnsProvider) -> None:
    forward_zone(pdns)
    await sync_forward(powerdns, "web2.example.com", ["192.0.2.160", "2001:db8::160"], ttl=120)
    assert await powerdns.get_rrset("example.com.", "web2.example.com.", "AAAA") is not None
    pruned = await sync_forward(powerdns, "web2.example.com", ["192.0.2.161"])
    assert pruned.ok
    assert await powerdns.get_rrset("example.com.", "web2.example.com.", "AAAA") is None
    a = await powerdns.get_rrset("example.com.", "web2.example.com.", "A")
    assert a is not None
    assert a.records == ("192.0.2.161",)
    homeless = await sync_forward(powerdns, "web.example.net", ["192.0.2.1"])
    assert not homeless.ok
    assert "no zone" in (homeless.error or "")


async def test_a_failed_write_keeps_decisions_already_made(pdns: PdnsServer) -> None:
    """The write times out after the rename rule was applied: only the addresses being written are errors."""
    await setup_reverse(pdns)

    class WriteTimesOut(PowerDnsProvider):
        async def apply(self, zone: str, changes: Sequence[Change]) -> ApplyResult:
            raise DnsUnavailable("powerdns: PATCH timed out", provider=self.name, zone=zone)

    writer = PowerDnsProvider.from_config(
        url=pdns.api_url, credentials={"api_key": pdns.api_key}, settings={}
    )
    await writer.apply(PARENT, [Change.replace(f"130.{PARENT}", "PTR", "custom.customer.net.")])
    await writer.aclose()
    provider = WriteTimesOut.from_config(url=pdns.api_url, credentials={"api_key": pdns.api_key}, settings={})
    try:
        report = await sync_ptrs(
            provider,
            ["192.0.2.130", "192.0.2.131"],
            "new.example.com",
            mode="rename",
            old_hostname="old.example.com",
        )
    finally:
        await provider.aclose()
    assert [e.outcome for e in report.entries] == ["preserved", "error"]
    assert "timed out" in report.entries[1].message
