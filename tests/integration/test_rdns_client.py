"""Client PTR edits and per-address status against a real pdns_server, plus the operator API and CLI.

Covers ownership against fresh platform data (including hosts inside a routed IPv6 subnet), host name
validation, empty value = delete, the 10 s per-address limit through ``ctx.cache`` (in-process and
Redis), every status, and that no credential reaches an API response or a log line.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from pdns_support.admin import create_zone
from pdns_support.launcher import PdnsServer
from rdns_support import add_platform, add_pool, add_powerdns, add_server, make_app, platform_url
from typer.testing import CliRunner

from vpsbridge.cli.main import app as cli_app
from vpsbridge.core.ipam import ptr_name
from vpsbridge.logs import configure_logging, reset_logging
from vpsbridge.platforms.dummy.cloud import DummyCloud
from vpsbridge.services import tokens
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.dns import (
    EditTooSoon,
    NotOwned,
    check_hostname,
    ptr_overview,
    set_client_ptr,
    set_zone_enabled,
)
from vpsbridge.services.dns import client as rdns_client
from vpsbridge.services.errors import Conflict, Invalid
from vpsbridge.web.app import create_app

pytest_plugins = ["pdns_support.fixtures"]
__all__ = ["platform_url"]

PARENT = "2.0.192.in-addr.arpa."
IP6 = "0.0.1.0.8.b.d.0.1.0.0.2.ip6.arpa."
CLIENT = Actor(type="client", id="c1")


def rr(name: str, rtype: str, *contents: str) -> dict[str, object]:
    return {
        "name": name,
        "type": rtype,
        "ttl": 60,
        "records": [{"content": c, "disabled": False} for c in contents],
    }


def seed_zones(pdns: PdnsServer) -> None:
    create_zone(pdns, PARENT)
    create_zone(pdns, IP6)
    create_zone(
        pdns,
        "example.com.",
        rrsets=[
            rr("vps1.example.com.", "A", "192.0.2.10"),
            rr("mail.example.com.", "A", "192.0.2.10"),
            rr("v6host.example.com.", "AAAA", "2001:db8:100:1::5"),
        ],
    )


@pytest.fixture(params=["memory", "redis"])
async def app(
    request: pytest.FixtureRequest, db_url: str, tmp_path: Path, pdns: PdnsServer
) -> AsyncIterator[AppContext]:
    extra = {"redis_url": request.getfixturevalue("redis_url")} if request.param == "redis" else {}
    ctx = await make_app(
        db_url, tmp_path, dns_resolvers=["127.0.0.1"], dns_resolver_port=pdns.dns_port, **extra
    )
    yield ctx
    await ctx.close()


async def seed(app: AppContext, pdns: PdnsServer, url: str) -> int:
    seed_zones(pdns)
    platform_id = await add_platform(app, url)
    await add_powerdns(app, pdns.api_url, pdns.api_key)
    await add_pool(app, platform_id, "v4", "192.0.2.0/24")
    return await add_server(
        app,
        platform_id,
        url,
        "vps1.example.com",
        ["192.0.2.10", "198.51.100.9", "10.1.2.3"],
        subnets=["2001:db8:100:1::/64"],
    )


async def test_client_edits(
    app: AppContext, pdns: PdnsServer, platform_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_id = await seed(app, pdns, platform_url)

    # Input checks come first and cost nothing upstream.
    for bad in ("localhost", "-bad.example.com", "a..b.example.com", "x" * 64 + ".example.com", "1.2.3.4"):
        with pytest.raises(Invalid):
            await set_client_ptr(app, server_id, "192.0.2.10", bad, CLIENT)
    with pytest.raises(Invalid):
        await set_client_ptr(app, server_id, "192.0.2.0/24", "vps1.example.com", CLIENT)
    assert check_hostname("Mail.Example.COM.") == "mail.example.com."

    # A host inside the routed /64 is the client's (checked against the platform); then it is locked
    # for 10 s.
    inside = await set_client_ptr(app, server_id, "2001:db8:100:1::5", "v6host.example.com", CLIENT)
    assert inside.outcome == "written"
    with pytest.raises(EditTooSoon) as too_soon:
        await set_client_ptr(app, server_id, "2001:db8:100:1::5", "", CLIENT)
    assert 1 <= too_soon.value.details["retry_after"] <= 10
    # From here on a shorter window, so the test does not wait 10 s between edits of one address.
    monkeypatch.setattr(rdns_client, "EDIT_WINDOW_SECONDS", 0.3)

    # Written only when forward-confirmed.
    done = await set_client_ptr(app, server_id, "192.0.2.10", "mail.example.com", CLIENT)
    assert (done.outcome, done.ptr) == ("written", "mail.example.com")
    with pytest.raises(EditTooSoon):
        await set_client_ptr(app, server_id, "192.0.2.10", "vps1.example.com", CLIENT)
    await asyncio.sleep(0.35)
    with pytest.raises(NotOwned):
        await set_client_ptr(app, server_id, "2001:db8:100:2::5", "v6host.example.com", CLIENT)
    # The platform no longer lists 192.0.2.10 (moved away): the cached data does not grant it.
    cloud = DummyCloud.for_url(platform_url)
    remote = next(iter(cloud.servers.values()))
    remote.ipv4 = ["198.51.100.9", "10.1.2.3"]
    await asyncio.sleep(0.35)
    with pytest.raises(NotOwned):
        await set_client_ptr(app, server_id, "192.0.2.10", "", CLIENT)
    remote.ipv4 = ["192.0.2.10", "198.51.100.9", "10.1.2.3"]

    # Not confirmed: nothing written. Private: refused. No zone: reported.
    await asyncio.sleep(0.35)
    unverified = await set_client_ptr(app, server_id, "192.0.2.10", "elsewhere.example.com", CLIENT)
    assert unverified.outcome == "unverified"
    with pytest.raises(Conflict):
        await set_client_ptr(app, server_id, "10.1.2.3", "vps1.example.com", CLIENT)
    assert (
        await set_client_ptr(app, server_id, "198.51.100.9", "vps1.example.com", CLIENT)
    ).outcome == "no_zone"

    rows = {r.ip or r.subnet: r for r in await ptr_overview(app, server_id, ["2001:db8:100:1::5"])}
    assert rows["2001:db8:100:1::/64"].status == "subnet"
    assert (rows["192.0.2.10"].status, rows["192.0.2.10"].ptr) == ("ok", "mail.example.com")
    assert rows["2001:db8:100:1::5"].status == "ok"
    assert rows["198.51.100.9"].status == "no_zone"
    assert rows["10.1.2.3"].status == "disabled"

    # Empty value deletes; the status becomes "missing".
    await asyncio.sleep(0.35)
    assert (await set_client_ptr(app, server_id, "192.0.2.10", "  ", CLIENT)).outcome == "deleted"
    rows = {r.ip: r for r in await ptr_overview(app, server_id)}
    assert rows["192.0.2.10"].status == "missing"

    # A PTR naming a host that does not point back is shown as unverified; a switched-off zone as disabled.
    from pdns_support.admin import admin_client

    with admin_client(pdns) as admin:
        body = {
            "rrsets": [{**rr(ptr_name("192.0.2.10"), "PTR", "stale.example.com."), "changetype": "REPLACE"}]
        }
        assert admin.patch(f"/zones/{PARENT}", json=body).status_code == 204
    rows = {r.ip: r for r in await ptr_overview(app, server_id)}
    assert rows["192.0.2.10"].status == "unverified"
    from vpsbridge.services.dns import list_zones

    zone_id = next(z.id for z in await list_zones(app) if z.name == PARENT)
    await set_zone_enabled(app, zone_id, False, Actor.system("t"))
    rows = {r.ip: r for r in await ptr_overview(app, server_id)}
    assert rows["192.0.2.10"].status == "disabled"


async def test_api_and_cli_never_show_secrets(
    db_url: str, tmp_path: Path, pdns: PdnsServer, platform_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = io.StringIO()
    ctx = await make_app(db_url, tmp_path, dns_resolvers=["127.0.0.1"], dns_resolver_port=pdns.dns_port)
    configure_logging(ctx.settings, stream=logs)
    try:
        server_id = await seed(ctx, pdns, platform_url)
        create_zone(pdns, "0/26.2.0.192.in-addr.arpa.", soa_edit_api="")
        web = create_app(context=ctx)
        async with web.router.lifespan_context(web):
            _out, token = await tokens.create_token(ctx, "ops", "write", Actor.cli())
            headers = {"Authorization": f"Bearer {token}"}
            transport = httpx2.ASGITransport(app=web)
            async with httpx2.AsyncClient(
                transport=transport, base_url="http://t", headers=headers
            ) as client:
                tested = await client.post("/api/v1/dns-providers/pdns/test")
                assert tested.status_code == 200, tested.text
                body = tested.json()
                assert body["ok"] is True
                assert body["version"]
                assert any("0/26.2.0.192.in-addr.arpa." in w and "SOA" in w.upper() for w in body["warnings"])
                synced = await client.post("/api/v1/dns-providers/pdns/zones/sync")
                assert synced.status_code == 200
                assert "0/26.2.0.192.in-addr.arpa." in synced.json()["added"]
                zones = (await client.get("/api/v1/dns-providers/pdns/zones")).json()
                assert {z["name"] for z in zones} >= {PARENT, IP6, "example.com."}
                status = (await client.get(f"/api/v1/servers/{server_id}/ptr")).json()
                assert status[0] == {
                    "ip": None,
                    "status": "subnet",
                    "ptr": None,
                    "ttl": None,
                    "zone": None,
                    "subnet": "2001:db8:100:1::/64",
                    "message": "routed subnet: set a PTR per host",
                }
                queued = await client.post(
                    f"/api/v1/servers/{server_id}/dns-sync", json={"mode": "provision"}
                )
                assert queued.status_code == 202
                assert queued.json()["kind"] == "dns_sync"
                assert (await client.post("/api/v1/servers/999/dns-sync")).status_code == 404
                for response in (tested, synced):
                    assert pdns.api_key not in response.text
        runner = CliRunner()
        monkeypatch.setenv("VPSBRIDGE_DATABASE_URL", db_url)
        monkeypatch.setenv("VPSBRIDGE_DATA_DIR", str(tmp_path))
        monkeypatch.setenv(
            "VPSBRIDGE_ENCRYPTION_KEYS", f'["{ctx.settings.encryption_keys[0].get_secret_value()}"]'
        )
        monkeypatch.setenv("VPSBRIDGE_DNS_RESOLVERS", '["127.0.0.1"]')
        monkeypatch.setenv("VPSBRIDGE_DNS_RESOLVER_PORT", str(pdns.dns_port))
        result = await asyncio.to_thread(runner.invoke, cli_app, ["dns", "test", "pdns"])
        assert result.exit_code == 0, result.output
        assert "version:" in result.output
        result = await asyncio.to_thread(runner.invoke, cli_app, ["dns", "sync", str(server_id), "--now"])
        assert result.exit_code == 0, result.output
        assert "reverse 1 ok / 0 errors" in result.output
        result = await asyncio.to_thread(
            runner.invoke, cli_app, ["dns", "ptr-status", str(server_id), "--json"]
        )
        assert result.exit_code == 0, result.output
        assert '"status": "ok"' in result.output
        result = await asyncio.to_thread(runner.invoke, cli_app, ["dns", "reconcile", "--json"])
        assert result.exit_code == 0, result.output
        result = await asyncio.to_thread(runner.invoke, cli_app, ["dns", "zones", "pdns"])
        assert result.exit_code == 0
        assert "example.com." in result.output
        for output in (result.output, logs.getvalue()):
            assert pdns.api_key not in output
    finally:
        await ctx.close()
        reset_logging()
