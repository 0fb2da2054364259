"""The VirtFusion demo contribution: idempotent seeding on both databases and a working platform."""

from __future__ import annotations

from pathlib import Path

import httpx2
from sqlalchemy import func, select

from vpsbridge.config import load_settings
from vpsbridge.platforms.registry import create_driver
from vpsbridge.services import platforms, products
from vpsbridge.services.context import AppContext
from vpsbridge.services.demo import DemoContext, load_contributions, seed_all
from vpsbridge.sim.virtfusion import create_app
from vpsbridge.sim.virtfusion.demo import PLATFORM, PRODUCTS, VirtFusionDemo, contribution
from vpsbridge.store.models import Platform, Product
from vpsbridge.store.secrets import generate_key


async def _counts(ctx: AppContext) -> tuple[int, int]:
    async with ctx.db.session() as session:
        p = await session.scalar(select(func.count()).select_from(Platform)) or 0
        q = await session.scalar(select(func.count()).select_from(Product)) or 0
        return p, q


def test_contribution_is_an_entry_point() -> None:
    assert any(isinstance(c, VirtFusionDemo) for c in load_contributions())


async def test_seed_is_idempotent_and_refreshes_the_url(db_url: str, tmp_path: Path) -> None:
    settings = load_settings(
        database_url=db_url, data_dir=tmp_path / "data", encryption_keys=[generate_key()]
    )
    ctx = await AppContext.create(settings)
    demos: list[DemoContext] = []
    try:
        for _ in range(2):
            demo = DemoContext(app=ctx, data_dir=tmp_path / "demo", web_url="http://127.0.0.1:9")
            demos.append(demo)
            await seed_all(demo, [contribution])
        assert await _counts(ctx) == (1, len(PRODUCTS))
        row = await platforms.get_platform(ctx, PLATFORM)
        assert row.type == "virtfusion"
        assert row.url == demos[-1].servers[0].url
        assert row.settings["panel_url"] == row.url
        product = await products.get_product_by_billing_id(ctx, PRODUCTS[0][0])
        assert product is not None
        assert product.placement == {"hypervisor_group_id": 1}
        # the registered simulator is the seeded 2 x 3 hypervisor world the platform points at
        state = contribution.state
        assert state is not None
        assert len(state.groups) == 2
        assert len(state.hypervisors) == 6
        assert len(state.packages) >= 4
        assert len(state.templates) >= 5
        # the stored URL and token work against that simulator (served in-process here)
        driver = create_driver(
            row.type,
            url=row.url,
            credentials=await platforms.platform_credentials(ctx, PLATFORM),
            settings=row.settings,
            transport=httpx2.ASGITransport(app=create_app(state)),
        )
        report = await driver.test_connection()
        await driver.aclose()
        assert report.ok, report
    finally:
        for demo in demos:
            await demo.close()
        await ctx.close()
