"""Stock of platforms that describe their nodes (Proxmox, the in-memory platform) through the product's
normal entry point: the source is registered by importing the stock service alone, so the operator
console, the periodic task and billing all see a quantity, not "does not report stock"."""

from __future__ import annotations

from provisioning_support import ACTOR, World, world

from vpsbridge.services import products
from vpsbridge.services.stock import recalculate, results

__all__ = ["world"]


async def test_in_memory_platform_reports_stock_from_its_nodes(world: World) -> None:
    product = await products.update_product(world.app, world.product, {"stock_control": True}, ACTOR)
    report = await recalculate(world.app, forget=True)
    # One node of 8 GiB RAM / 8 cores / 200 GB, a 1 GiB / 1 core / 20 GB plan, 10 % kept free: RAM and
    # cores allow 7, storage 9. The in-memory platform hands out addresses itself: pools do not cap it.
    row = next(r for r in await results(world.app) if r.product_id == product.id)
    assert row.status == "ok", row
    assert row.quantity == report.results[str(product.id)]
    assert row.quantity == 7
