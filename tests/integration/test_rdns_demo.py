"""The DNS demo contribution: idempotent seeding, zone discovery and a full DNS sync on the simulator."""

from __future__ import annotations

from pathlib import Path

import httpx2
from rdns_support import add_server, make_app
from sqlalchemy import func, select

from vpsbridge.platforms.dummy.cloud import DummyCloud
from vpsbridge.services import dns_providers, platforms, pools
from vpsbridge.services.demo import (
    DEMO_PLATFORM,
    DemoContext,
    foundation,
    load_contributions,
    seed_all,
    start_all,
)
from vpsbridge.services.dns import list_zones, load_target, ptr_overview, sync_server_now
from vpsbridge.services.dns.catalog import EXTRAS_TRANSPORTS
from vpsbridge.services.dns.demo import FORWARD_ZONE, PROVIDER, DnsDemo, contribution, demo_zones
from vpsbridge.sim.hestiacp import create_app
from vpsbridge.store.models import DnsProvider


def test_contribution_is_an_entry_point() -> None:
    assert any(isinstance(c, DnsDemo) for c in load_contributions())


async def test_demo_dns_end_to_end(db_url: str, tmp_path: Path) -> None:
    ctx = await make_app(db_url, tmp_path / "data")
    demos: list[DemoContext] = []
    try:
        for _ in range(2):
            demo = DemoContext(app=ctx, data_dir=tmp_path / "demo", web_url="http://127.0.0.1:9")
            demos.append(demo)
            await seed_all(demo, [foundation, contribution])
        async with ctx.db.session() as session:
            assert await session.scalar(select(func.count()).select_from(DnsProvider)) == 1
        row = await dns_providers.get_dns_provider(ctx, PROVIDER)
        assert row.url == demos[-1].servers[0].url
        assert row.has_credentials
        assert "2.0.192.in-addr.arpa" in demo_zones()
        assert (await pools.get_pool(ctx, "demo-ipv4")).settings["dns_zone"] == FORWARD_ZONE + "."

        # Serve the seeded simulator in-process and run the start hook: the zones reach the catalog.
        state = contribution.state
        assert state is not None
        ctx.extras[EXTRAS_TRANSPORTS] = {"hestiacp": httpx2.ASGITransport(app=create_app(state))}
        await start_all(demos[-1], [contribution])
        assert {z.name for z in await list_zones(ctx, PROVIDER)} == {z + "." for z in demo_zones()}

        # A demo server gets its A/AAAA and both PTRs in one sync, confirmed by the authoritative zone.
        platform = await platforms.get_platform(ctx, DEMO_PLATFORM)
        server_id = await add_server(
            ctx,
            platform.id,
            platform.url,
            f"web1.{FORWARD_ZONE}",
            ["192.0.2.10", "2001:db8:100::10"],
            pool="demo-ipv4",
        )
        summary = await sync_server_now(ctx, await load_target(ctx, server_id), "provision")
        assert summary["forward_ok"] == 2
        assert summary["forward_errors"] == 0
        assert summary["reverse_counts"] == {"written": 2}
        records = state.domains["admin"]["2.0.192.in-addr.arpa"].records.values()
        assert {"RECORD": "10", "TYPE": "PTR", "VALUE": f"web1.{FORWARD_ZONE}."}.items() <= next(
            r for r in records if r["RECORD"] == "10"
        ).items()
        forward = state.domains["admin"][FORWARD_ZONE].records.values()
        assert {(r["RECORD"], r["TYPE"], r["VALUE"]) for r in forward} >= {
            ("web1", "A", "192.0.2.10"),
            ("web1", "AAAA", "2001:db8:100::10"),
        }
        statuses = {r.ip: r.status for r in await ptr_overview(ctx, server_id)}
        assert statuses == {"192.0.2.10": "ok", "2001:db8:100::10": "ok"}
    finally:
        for demo in demos:
            await demo.close()
        DummyCloud.reset("dummy://demo")
        await ctx.close()
