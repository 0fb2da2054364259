"""The bridge's stock answer counts every location of a multi-location product (SQLite, PostgreSQL).

The PHP sends each stock-controlled product with the values of its Location configurable option;
the bridge forwards them, so the product's placement lists every hypervisor group and each group's
capacity is asked for."""

from __future__ import annotations

from stock_support import StockWorld, world

from vpsbridge.billing.whmcs import lifecycle
from vpsbridge.services import products

__all__ = ["world"]


def whmcs_row(pid: str, **extra: object) -> dict[str, object]:
    return {
        "id": pid,
        "name": f"VPS {pid}",
        "stockcontrol": "1",
        "configoption1": "vf",
        "configoption2": "1",
        "configoption3": "1",
        **extra,
    }


async def test_every_location_counts(world: StockWorld) -> None:
    answers = await lifecycle.stock(
        world.ctx, [whmcs_row("31", locations=["1|London", "2|Frankfurt"])], "cron"
    )
    assert answers["31"] is not None
    assert answers["31"] > 0
    stored = await products.get_product_by_billing_id(world.ctx, "31")
    assert stored is not None
    assert stored.placement["location_group_ids"] == [1, 2]
    assert world.calls("/compute/hypervisors/groups/2/resources") == 1

    # A product without a Location option keeps what is stored (no locations key at all).
    await lifecycle.stock(world.ctx, [whmcs_row("31")], "cron")
    again = await products.get_product_by_billing_id(world.ctx, "31")
    assert again is not None
    assert again.placement["location_group_ids"] == [1, 2]

    # A location removed in WHMCS is dropped here too.
    await lifecycle.stock(world.ctx, [whmcs_row("31", locations=["1|London"])], "cron")
    dropped = await products.get_product_by_billing_id(world.ctx, "31")
    assert dropped is not None
    assert dropped.placement["location_group_ids"] == [1]
