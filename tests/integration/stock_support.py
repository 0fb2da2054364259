"""Shared set-up of the stock integration tests: an AppContext whose VirtFusion platform is the
in-process simulator (through an ASGI transport with a short read timeout), and product helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from virtfusion_support import PANEL, TOKEN, TimedASGITransport

from vpsbridge.config import load_settings
from vpsbridge.services import platforms, products
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.stock import EXTRAS_TRANSPORTS
from vpsbridge.sim.virtfusion import VirtFusionState, create_app
from vpsbridge.store.models import StockResult
from vpsbridge.store.secrets import generate_key

ACTOR = Actor(type="admin", id="alice")


@dataclass
class StockWorld:
    ctx: AppContext
    sim: VirtFusionState
    transport: TimedASGITransport

    def calls(self, path_start: str) -> int:
        return sum(
            1 for method, path, _status in self.sim.requests if path.startswith("/api/v1" + path_start)
        )

    async def product(
        self,
        name: str,
        *,
        package_id: int = 1,
        group_id: int = 1,
        locations: list[int] | None = None,
        stock_control: bool = True,
        ipv4: int = 1,
        buffer: float = 10.0,
        billing_id: str | None = None,
    ) -> int:
        placement: dict[str, Any] = {"hypervisor_group_id": group_id}
        if locations:
            placement["location_group_ids"] = locations
        out = await products.create_product(
            self.ctx,
            {
                "name": name,
                "billing_product_id": billing_id,
                "platform": "vf",
                "placement": placement,
                "plan": {"package_id": package_id, "default_ipv4": ipv4},
                "stock_control": stock_control,
                "stock_buffer_pct": buffer,
            },
            ACTOR,
        )
        return out.id

    async def age_results(self, seconds: float) -> None:
        """Pretend every stored result was computed ``seconds`` ago."""
        async with self.ctx.db.session() as session:
            when = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
            await session.execute(update(StockResult).values(computed_at=when))

    def fill(self, group_id: int, memory_mb: int) -> None:
        """Take ``memory_mb`` of free memory away from every hypervisor of the group."""
        for hv in self.sim.hypervisors.values():
            if hv.group_id == group_id:
                hv.memory_mb -= memory_mb


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[StockWorld]:
    settings = load_settings(database_url=db_url, data_dir=tmp_path, encryption_keys=[generate_key()])
    ctx = await AppContext.create(settings)
    sim = VirtFusionState(task_seconds=0.05, ipv6_delay_seconds=0.05).seed_demo()
    transport = TimedASGITransport(create_app(sim), read_timeout=0.3)
    ctx.extras[EXTRAS_TRANSPORTS] = {PANEL: transport}
    await platforms.create_platform(
        ctx,
        {
            "name": "vf",
            "type": "virtfusion",
            "url": PANEL,
            "credentials": {"token": TOKEN},
            "settings": {"max_retries": 0, "retry_wait_initial": 0.01},
        },
        ACTOR,
    )
    try:
        yield StockWorld(ctx=ctx, sim=sim, transport=transport)
    finally:
        await ctx.close()
