"""The Proxmox demo contribution: idempotent seeding on both databases, and a platform that works."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from vpsbridge.config import load_settings
from vpsbridge.platforms.registry import create_driver
from vpsbridge.services import platforms, products
from vpsbridge.services.context import AppContext
from vpsbridge.services.demo import DemoContext, load_contributions, seed_all
from vpsbridge.sim.proxmox import SimTransport, create_app
from vpsbridge.sim.proxmox.demo import PLATFORM, PRODUCTS, ProxmoxDemo, contribution
from vpsbridge.store.models import Platform, Product
from vpsbridge.store.secrets import generate_key


async def _counts(ctx: AppContext) -> tuple[int, int]:
    async with ctx.db.session() as session:
        p = await session.scalar(select(func.count()).select_from(Platform).where(Platform.name == PLATFORM))
        q = await session.scalar(select(func.count()).select_from(Product))
        return p or 0, q or 0


def test_contribution_is_an_entry_point() -> None:
    assert any(isinstance(c, ProxmoxDemo) for c in load_contributions())


async def test_seed_is_idempotent_and_the_platform_works(db_url: str, tmp_path: Path) -> None:
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
        assert row.type == "proxmox"
        assert row.url == demos[-1].servers[0].url
        product = await products.get_product_by_billing_id(ctx, PRODUCTS[0][0])
        assert product is not None
        assert product.placement["nodes"] == ["pve1", "pve2", "pve3"]
        state = contribution.state
        assert state is not None
        assert sorted(state.nodes) == ["pve1", "pve2", "pve3"]
        assert "ceph" in state.shared_storages
        names = sorted(vm.config["name"] for vm in state.vms.values() if vm.template)
        assert names == ["almalinux-9", "debian-12", "ubuntu-2404"]
        # the stored credentials drive the seeded cluster
        credentials = await platforms.platform_credentials(ctx, PLATFORM)
        driver = create_driver(
            "proxmox",
            url=row.url,
            credentials=credentials,
            settings=row.settings,
            transport=SimTransport(create_app(state)),
        )
        try:
            report = await driver.test_connection()
            templates = await driver.os_templates()
        finally:
            await driver.aclose()
        assert report.ok, report.checks
        assert sorted(t.name for t in templates) == names
    finally:
        for demo in demos:
            await demo.close()
        await ctx.close()
