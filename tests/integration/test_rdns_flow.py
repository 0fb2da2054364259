"""Provision, rename, reconcile and terminate a server's DNS through the job queue, on a real pdns_server.

Runs on SQLite and PostgreSQL. Records are read back through the PowerDNS API and resolved with
dnspython against the server's DNS port, so "written" means a resolver really answers it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import dns.asyncresolver
import dns.resolver
import pytest
from pdns_support.admin import admin_client, create_zone
from pdns_support.launcher import PdnsServer
from rdns_support import (
    add_platform,
    add_pool,
    add_powerdns,
    add_product,
    add_server,
    assign,
    job,
    job_lines,
    make_app,
    platform_url,
    run_jobs,
    set_hostname,
)
from sqlalchemy import update

from vpsbridge.core.ipam import ptr_name
from vpsbridge.services.context import AppContext
from vpsbridge.services.dns import (
    list_zones,
    on_server_provisioned,
    on_server_renamed,
    on_server_terminated,
    reconcile_fleet,
)
from vpsbridge.store.models import IpAddress, Server

pytest_plugins = ["pdns_support.fixtures"]
__all__ = ["platform_url"]

PARENT = "2.0.192.in-addr.arpa."
CLASSLESS = "64/26.2.0.192.in-addr.arpa."
IP6 = "0.0.1.0.8.b.d.0.1.0.0.2.ip6.arpa."
FORWARD = "example.com."
V4, V4C, V6, PRIVATE = "192.0.2.10", "192.0.2.70", "2001:db8:100::10", "10.0.0.5"


@pytest.fixture
async def app(db_url: str, tmp_path: Path, pdns: PdnsServer) -> AsyncIterator[AppContext]:
    ctx = await make_app(db_url, tmp_path, dns_resolvers=["127.0.0.1"], dns_resolver_port=pdns.dns_port)
    yield ctx
    await ctx.close()


def zones(server: PdnsServer) -> None:
    for name in (PARENT, CLASSLESS, IP6, FORWARD):
        create_zone(server, name)


def rrset(server: PdnsServer, zone: str, name: str, rtype: str) -> list[str]:
    with admin_client(server) as admin:
        data = admin.get(f"/zones/{zone.replace('/', '=2F')}").json()
    for item in data["rrsets"]:
        if item["name"] == name and item["type"] == rtype:
            return sorted(r["content"] for r in item["records"])
    return []


def serial(server: PdnsServer, zone: str) -> int:
    with admin_client(server) as admin:
        return int(admin.get(f"/zones/{zone.replace('/', '=2F')}").json()["serial"])


def put_ptr(server: PdnsServer, zone: str, name: str, content: str | None) -> None:
    change = {"name": name, "type": "PTR", "changetype": "DELETE"}
    if content is not None:
        change = {
            **change,
            "changetype": "REPLACE",
            "ttl": 300,
            "records": [{"content": content, "disabled": False}],
        }
    with admin_client(server) as admin:
        response = admin.patch(f"/zones/{zone.replace('/', '=2F')}", json={"rrsets": [change]})
        assert response.status_code == 204, response.text


async def resolve(server: PdnsServer, name: str, rtype: str) -> list[str]:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.dns_port
    try:
        answer = await resolver.resolve(name, rtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    return sorted(r.to_text() for r in answer)


async def test_provision_rename_reconcile_terminate(
    app: AppContext, pdns: PdnsServer, platform_url: str
) -> None:
    zones(pdns)
    platform_id = await add_platform(app, platform_url)
    await add_powerdns(app, pdns.api_url, pdns.api_key)
    await add_pool(app, platform_id, "v4", "192.0.2.0/24")
    await add_pool(app, platform_id, "v6", "2001:db8:100::/48")
    await add_pool(app, platform_id, "lan", "10.0.0.0/24")
    await add_product(app, platform_id, "vps-s", FORWARD)
    server_id = await add_server(
        app, platform_id, platform_url, "vps1.example.com", [V4, V4C], pool="v4", product="vps-s"
    )
    await assign(app, server_id, "v6", V6)
    await assign(app, server_id, "lan", PRIVATE)

    # --- provision: forward records first, then a PTR per public address (private ones skipped) ---
    first = await on_server_provisioned(app, server_id)
    assert await on_server_provisioned(app, server_id) == first  # one queued job per server and kind
    await run_jobs(app)
    done = await job(app, first)
    assert done.status == "succeeded", done.last_error
    result = done.result or {}
    assert result["forward_ok"] == 2
    assert result["forward_errors"] == 0
    assert result["reverse_ok"] == 3
    assert result["reverse_errors"] == 0
    assert {a["ip"] for a in result["addresses"]} == {V4, V4C, V6}
    assert rrset(pdns, PARENT, ptr_name(V4), "PTR") == ["vps1.example.com."]
    assert rrset(pdns, CLASSLESS, "70." + CLASSLESS, "PTR") == ["vps1.example.com."]
    assert rrset(pdns, PARENT, ptr_name(V4C), "PTR") == []  # the classless zone won
    assert rrset(pdns, IP6, ptr_name(V6), "PTR") == ["vps1.example.com."]
    assert await resolve(pdns, ptr_name(V4), "PTR") == ["vps1.example.com."]
    assert await resolve(pdns, ptr_name(V6), "PTR") == ["vps1.example.com."]
    assert await resolve(pdns, "vps1.example.com.", "A") == sorted([V4, V4C])
    assert await resolve(pdns, "vps1.example.com.", "AAAA") == [V6]
    assert pdns.notify.wait_for(PARENT)
    assert pdns.notify.wait_for(IP6)
    lines = await job_lines(app, first)
    assert any(line.startswith("summary: forward 2 ok / 0 errors; reverse 3 ok / 0 errors") for line in lines)
    assert any(f"PTR {V4}: written" in line for line in lines)
    assert {z.name for z in await list_zones(app)} == {PARENT, CLASSLESS, IP6, FORWARD}

    # --- a second identical sync writes nothing: no serial moves ---
    serials = {z: serial(pdns, z) for z in (PARENT, CLASSLESS, IP6, FORWARD)}
    again = await on_server_provisioned(app, server_id)
    assert again != first
    await run_jobs(app)
    assert ((await job(app, again)).result or {})["reverse_counts"] == {"unchanged": 3}
    assert {z: serial(pdns, z) for z in serials} == serials

    # --- rename: PTRs still naming the old host move; a client's custom PTR stays ---
    put_ptr(pdns, CLASSLESS, "70." + CLASSLESS, "custom.example.org.")
    await set_hostname(app, server_id, "vps1-new.example.com")
    renamed = await on_server_renamed(app, server_id, "vps1.example.com", "vps1-new.example.com")
    await run_jobs(app)
    rename_result = (await job(app, renamed)).result or {}
    outcomes = {a["ip"]: a["outcome"] for a in rename_result["addresses"]}
    assert outcomes == {V4: "written", V4C: "preserved", V6: "written"}
    assert rrset(pdns, PARENT, ptr_name(V4), "PTR") == ["vps1-new.example.com."]
    assert rrset(pdns, CLASSLESS, "70." + CLASSLESS, "PTR") == ["custom.example.org."]
    assert rrset(pdns, FORWARD, "vps1.example.com.", "A") == []  # the old name is ours: removed
    assert rrset(pdns, FORWARD, "vps1-new.example.com.", "A") == sorted([V4, V4C])

    # --- daily reconcile is additive; force resets to the hostname ---
    put_ptr(pdns, PARENT, ptr_name(V4), None)
    report = await reconcile_fleet(app)
    by_ip = {e.ip: e.outcome for e in report.reverse.entries}
    assert by_ip == {V4: "written", V4C: "preserved", V6: "unchanged"}
    assert rrset(pdns, PARENT, ptr_name(V4), "PTR") == ["vps1-new.example.com."]
    assert rrset(pdns, CLASSLESS, "70." + CLASSLESS, "PTR") == ["custom.example.org."]
    forced = await reconcile_fleet(app, force=True, server_ids=[server_id])
    assert {e.ip: e.outcome for e in forced.reverse.entries}[V4C] == "written"
    assert rrset(pdns, CLASSLESS, "70." + CLASSLESS, "PTR") == ["vps1-new.example.com."]

    # --- terminate: addresses captured at the call, released before the job runs ---
    gone = await on_server_terminated(app, server_id)
    async with app.db.session() as session:
        await session.execute(update(IpAddress).values(server_id=None))
        await session.execute(update(Server).values(state="terminated", last_known={}))
    await run_jobs(app)
    end = (await job(app, gone)).result or {}
    assert {a["ip"]: a["outcome"] for a in end["addresses"]} == {V4: "deleted", V4C: "deleted", V6: "deleted"}
    assert await resolve(pdns, ptr_name(V4), "PTR") == []
    assert rrset(pdns, IP6, ptr_name(V6), "PTR") == []
    assert rrset(pdns, FORWARD, "vps1-new.example.com.", "A") == []
    assert rrset(pdns, FORWARD, "vps1-new.example.com.", "AAAA") == []
    # A terminated server is left alone by the reconcile.
    assert (await reconcile_fleet(app)).servers == 0


async def test_forward_confirmation_and_failures_are_reported_not_fatal(
    app: AppContext, pdns: PdnsServer, platform_url: str
) -> None:
    zones(pdns)
    create_zone(
        pdns,
        "example.org.",
        rrsets=[
            {
                "name": "b.example.org.",
                "type": "A",
                "ttl": 60,
                "records": [{"content": "192.0.2.20", "disabled": False}],
            }
        ],
    )
    platform_id = await add_platform(app, platform_url)
    await add_powerdns(app, pdns.api_url, pdns.api_key)
    # No forward zone configured: confirmation comes from the zone's authoritative data.
    confirmed = await add_server(app, platform_id, platform_url, "b.example.org", ["192.0.2.20"])
    lonely = await add_server(
        app, platform_id, platform_url, "nowhere.example.org", ["192.0.2.30", "198.51.100.7"]
    )
    first = await on_server_provisioned(app, confirmed)
    second = await on_server_provisioned(app, lonely)
    await run_jobs(app)
    ok = (await job(app, first)).result or {}
    assert ok["reverse_counts"] == {"written": 1}
    assert rrset(pdns, PARENT, ptr_name("192.0.2.20"), "PTR") == ["b.example.org."]
    skipped = await job(app, second)
    assert skipped.status == "succeeded"
    outcomes = {a["ip"]: a["outcome"] for a in (skipped.result or {})["addresses"]}
    assert outcomes == {"192.0.2.30": "unverified", "198.51.100.7": "no_zone"}
    assert rrset(pdns, PARENT, ptr_name("192.0.2.30"), "PTR") == []

    # A provider that cannot be reached: the job still succeeds and reports the error per address.
    from vpsbridge.services import dns_providers
    from vpsbridge.services.audit import Actor

    await dns_providers.update_dns_provider(app, "pdns", {"url": "http://127.0.0.1:9"}, Actor.system("t"))
    broken = await on_server_provisioned(app, confirmed)
    await run_jobs(app)
    failed = await job(app, broken)
    assert failed.status == "succeeded"
    assert (failed.result or {})["reverse_errors"] == 1
    lines = await job_lines(app, broken)
    assert any("reverse 0 ok / 1 errors" in line for line in lines)
    assert not any(pdns.api_key in line for line in lines)
