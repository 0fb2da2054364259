"""IP allocation against a real database: uniqueness under concurrency, idempotence, release rules,
IPv6 prefixes, scopes and usage figures (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from vpsbridge.config import load_settings
from vpsbridge.services import ipam, platforms, pools
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import Conflict, Invalid
from vpsbridge.store.models import Server

ACTOR = Actor.system("test")


@pytest.fixture
async def app(db_url: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    settings = load_settings(
        database_url=db_url, data_dir=tmp_path, encryption_keys=[Fernet.generate_key().decode()]
    )
    ctx = await AppContext.create(settings)
    yield ctx
    await ctx.close()


async def _platform(app: AppContext) -> int:
    out = await platforms.create_platform(
        app, {"name": "pve", "type": "proxmox", "url": "https://pve.test:8006"}, ACTOR
    )
    return out.id


async def _servers(app: AppContext, platform_id: int, count: int) -> list[int]:
    async with app.db.session() as session:
        rows = [Server(platform_id=platform_id, state="building") for _ in range(count)]
        session.add_all(rows)
        await session.flush()
        return [r.id for r in rows]


async def test_concurrent_allocations_never_share_an_address(app: AppContext) -> None:
    pid = await _platform(app)
    await pools.create_pool(
        app,
        {"name": "small", "platform": pid, "network": "198.51.100.0/27", "gateway": "198.51.100.1"},
        ACTOR,
    )
    servers = await _servers(app, pid, 40)

    async def one(server_id: int) -> list[str] | str:
        try:
            got = await ipam.allocate_for(app, server_id=server_id, platform_id=pid, ipv4=1)
        except ipam.PoolExhausted as exc:
            return str(exc)
        return [a.address for a in got]

    results = await asyncio.gather(*(one(s) for s in servers))
    given = [r[0] for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, str)]
    # /27 = 30 usable hosts minus the gateway = 29 addresses, each handed out exactly once.
    assert len(given) == 29
    assert len(set(given)) == 29
    assert "198.51.100.1" not in given
    assert len(refused) == 11
    assert all("no free IPv4" in r for r in refused)
    usage = (await ipam.pool_usage(app, "small"))[0]
    assert (usage.size, usage.allocated, usage.free) == (29, 29, 0)


async def test_allocation_is_idempotent_and_tops_up(app: AppContext) -> None:
    pid = await _platform(app)
    await pools.create_pool(
        app, {"name": "v4", "platform": pid, "network": "192.0.2.0/24", "gateway": "192.0.2.1"}, ACTOR
    )
    (server,) = await _servers(app, pid, 1)
    first = await ipam.allocate_for(app, server_id=server, platform_id=pid, ipv4=1)
    again = await ipam.allocate_for(app, server_id=server, platform_id=pid, ipv4=1)
    assert [a.address for a in first] == [a.address for a in again] == ["192.0.2.2"]
    more = await ipam.allocate_for(app, server_id=server, platform_id=pid, ipv4=3)
    assert [a.address for a in more] == ["192.0.2.2", "192.0.2.3", "192.0.2.4"]
    assert all(a.gateway == "192.0.2.1" and a.prefix_length == 24 for a in more)


async def test_released_addresses_are_the_only_ones_reused(app: AppContext) -> None:
    pid = await _platform(app)
    await pools.create_pool(
        app, {"name": "v4", "platform": pid, "network": "192.0.2.0/29", "gateway": "192.0.2.1"}, ACTOR
    )
    a, b, c = await _servers(app, pid, 3)
    await ipam.allocate_for(app, server_id=a, platform_id=pid, ipv4=1)
    await ipam.allocate_for(app, server_id=b, platform_id=pid, ipv4=1)
    # Server a is detached from its row's server (e.g. the server record is gone) - the row stays.
    assert await ipam.release(app, a) == 1
    got = await ipam.allocate_for(app, server_id=c, platform_id=pid, ipv4=1)
    assert got[0].address == "192.0.2.2"
    assert await ipam.release(app, 999) == 0


async def test_failed_allocation_rolls_back_partial_rows(app: AppContext) -> None:
    pid = await _platform(app)
    await pools.create_pool(app, {"name": "v4", "platform": pid, "network": "192.0.2.0/30"}, ACTOR)
    (server,) = await _servers(app, pid, 1)
    with pytest.raises(ipam.PoolExhausted):
        await ipam.allocate_for(app, server_id=server, platform_id=pid, ipv4=1, ipv6=1)
    assert (await ipam.pool_usage(app, "v4"))[0].allocated == 0


async def test_ipv6_only_and_prefix_delegation(app: AppContext) -> None:
    pid = await _platform(app)
    await pools.create_pool(
        app,
        {"name": "v6", "platform": pid, "network": "2001:db8:100::/48", "settings": {"assign_prefix": 64}},
        ACTOR,
    )
    await pools.create_pool(
        app,
        {"name": "v6-host", "platform": pid, "network": "2001:db8:9::/64", "gateway": "2001:db8:9::1"},
        ACTOR,
    )
    a, b = await _servers(app, pid, 2)
    got = await ipam.allocate_for(app, server_id=a, platform_id=pid, ipv4=0, ipv6=1, pool_refs=["v6"])
    assert got[0].subnet == "2001:db8:100::/64"
    assert got[0].address == "2001:db8:100::1"
    assert got[0].host_cidr == "2001:db8:100::/64"
    assert got[0].cidr == "2001:db8:100::1/64"
    second = await ipam.allocate_for(app, server_id=b, platform_id=pid, ipv4=0, ipv6=1, pool_refs=["v6"])
    assert second[0].subnet == "2001:db8:100:1::/64"
    usage = {u.name: u for u in await ipam.pool_usage(app)}
    assert usage["v6"].unit == "prefix"
    assert usage["v6"].size == 2**16
    assert usage["v6"].allocated == 2
    assert usage["v6"].reverse_zone == "0.0.1.0.8.b.d.0.1.0.0.2.ip6.arpa."
    host = await ipam.allocate_for(app, server_id=a, platform_id=pid, ipv4=0, ipv6=2, pool_refs=["v6-host"])
    assert [h.address for h in host if h.pool_name == "v6-host"] == ["2001:db8:9::2"]


async def test_scoped_pools_serve_only_their_node_or_group(app: AppContext) -> None:
    pid = await _platform(app)
    await pools.create_pool(
        app, {"name": "pve2-only", "platform": pid, "scope": "pve2", "network": "203.0.113.0/28"}, ACTOR
    )
    await pools.create_pool(app, {"name": "shared", "platform": pid, "network": "192.0.2.0/28"}, ACTOR)
    a, b = await _servers(app, pid, 2)
    on_pve2 = await ipam.allocate_for(app, server_id=a, platform_id=pid, scopes=["pve2"])
    elsewhere = await ipam.allocate_for(app, server_id=b, platform_id=pid, scopes=["pve3"])
    assert on_pve2[0].pool_name == "pve2-only"
    assert on_pve2[0].scope == "pve2"
    assert elsewhere[0].pool_name == "shared"


async def test_operator_assign_reserve_and_unreserve(app: AppContext) -> None:
    pid = await _platform(app)
    await pools.create_pool(
        app, {"name": "v4", "platform": pid, "network": "192.0.2.0/24", "gateway": "192.0.2.1"}, ACTOR
    )
    (server,) = await _servers(app, pid, 1)
    await ipam.assign(app, "v4", "192.0.2.2", note="router")
    with pytest.raises(Conflict, match="already taken by a reservation"):
        await ipam.assign(app, "v4", "192.0.2.2", server_id=server)
    with pytest.raises(Invalid, match="gateway"):
        await ipam.assign(app, "v4", "192.0.2.1")
    with pytest.raises(Invalid, match="outside"):
        await ipam.assign(app, "v4", "10.0.0.1")
    got = await ipam.allocate_for(app, server_id=server, platform_id=pid)
    assert got[0].address == "192.0.2.3"  # the reserved address is skipped
    usage = (await ipam.pool_usage(app, "v4"))[0]
    assert (usage.allocated, usage.reserved, usage.free) == (1, 1, 251)
    assert usage.reverse_zone == "2.0.192.in-addr.arpa."
    await ipam.unreserve(app, "v4", "192.0.2.2")
    assert (await ipam.pool_usage(app, "v4"))[0].reserved == 0


async def test_disabled_pool_is_never_used(app: AppContext) -> None:
    pid = await _platform(app)
    await pools.create_pool(
        app, {"name": "off", "platform": pid, "network": "192.0.2.0/24", "enabled": False}, ACTOR
    )
    (server,) = await _servers(app, pid, 1)
    with pytest.raises(ipam.PoolExhausted, match="none configured"):
        await ipam.allocate_for(app, server_id=server, platform_id=pid)
