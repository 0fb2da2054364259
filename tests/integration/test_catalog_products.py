"""Products: CRUD by id or name, billing upserts, references to platforms and services."""

from __future__ import annotations

import pytest
from catalog_support import ACTOR, audit_rows, ctx

from vpsbridge.services import platforms, products
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.store.models import Service

__all__ = ["ctx"]
BRIDGE = Actor(type="bridge", id="whmcs")


async def _platform(ctx: AppContext, name: str = "vf-main") -> int:
    out = await platforms.create_platform(
        ctx, {"name": name, "type": "dummy", "url": "dummy://vf-main"}, ACTOR
    )
    return out.id


async def test_product_crud(ctx: AppContext) -> None:
    platform_id = await _platform(ctx)
    created = await products.create_product(
        ctx,
        {
            "name": "VPS M",
            "platform": "vf-main",
            "plan": {"package_id": 3, "memory_mb": 4096},
            "placement": {"hypervisor_group": 1},
            "stock_control": True,
            "stock_buffer_pct": 25,
            "dns_zone": "Example.NET",
        },
        ACTOR,
    )
    assert created.platform_id == platform_id
    assert created.platform_name == "vf-main"
    assert created.dns_zone == "example.net."
    assert created.stock_buffer_pct == 25

    by_name = await products.get_product(ctx, "VPS M")
    assert by_name.id == created.id
    updated = await products.update_product(
        ctx, created.id, {"plan": {"package_id": 4}, "enabled": False}, ACTOR
    )
    assert updated.plan == {"package_id": 4}
    assert updated.enabled is False
    assert updated.placement == {"hypervisor_group": 1}  # untouched
    assert [p.name for p in await products.list_products(ctx)] == ["VPS M"]

    await products.delete_product(ctx, "VPS M", ACTOR)
    with pytest.raises(NotFound):
        await products.get_product(ctx, created.id)
    actions = [r.action for r in await audit_rows(ctx) if r.object_type == "product"]
    assert actions == ["product.create", "product.update", "product.delete"]


async def test_product_validation(ctx: AppContext) -> None:
    await _platform(ctx)
    with pytest.raises(Invalid) as bad_pct:
        await products.create_product(
            ctx, {"name": "A", "platform": "vf-main", "stock_buffer_pct": 101}, ACTOR
        )
    assert bad_pct.value.field == "stock_buffer_pct"
    with pytest.raises(Invalid) as no_platform:
        await products.create_product(ctx, {"name": "A", "platform": "nope"}, ACTOR)
    assert no_platform.value.field == "platform"
    with pytest.raises(Invalid) as extra:
        await products.create_product(ctx, {"name": "A", "platform": "vf-main", "colour": "red"}, ACTOR)
    assert extra.value.field == "colour"

    await products.create_product(ctx, {"name": "A", "platform": "vf-main", "billing_product_id": "7"}, ACTOR)
    with pytest.raises(Conflict, match="billing product id"):
        await products.create_product(
            ctx, {"name": "B", "platform": "vf-main", "billing_product_id": "7"}, ACTOR
        )
    await products.create_product(ctx, {"name": "A", "platform": "vf-main"}, ACTOR)
    with pytest.raises(Conflict, match="use its id"):
        await products.get_product(ctx, "A")


async def test_upsert_from_billing_is_idempotent(ctx: AppContext) -> None:
    await _platform(ctx)
    await _platform(ctx, "vf-second")
    first = await products.upsert_product_from_billing(
        ctx, "12", {"name": "VPS L", "platform": "vf-main", "plan": {"package_id": 9}}, BRIDGE
    )
    assert first.billing_product_id == "12"
    again = await products.upsert_product_from_billing(
        ctx, "12", {"name": "VPS L", "platform": "vf-main", "plan": {"package_id": 9}}, BRIDGE
    )
    assert again.id == first.id
    moved = await products.upsert_product_from_billing(
        ctx, "12", {"name": "VPS L2", "platform": "vf-second"}, BRIDGE
    )
    assert moved.id == first.id
    assert moved.name == "VPS L2"
    assert moved.platform_name == "vf-second"
    assert moved.plan == {"package_id": 9}
    found = await products.get_product_by_billing_id(ctx, "12")
    assert found is not None
    assert found.id == first.id
    assert await products.get_product_by_billing_id(ctx, "13") is None

    rows = [r for r in await audit_rows(ctx) if r.object_type == "product"]
    assert [r.action for r in rows] == ["product.create", "product.update"]  # the identical resend is silent
    assert {r.actor_type for r in rows} == {"bridge"}
    assert rows[1].details["fields"] == ["name", "platform_id"]

    with pytest.raises(Invalid) as missing:
        await products.upsert_product_from_billing(ctx, "99", {"name": "No platform"}, BRIDGE)
    assert missing.value.field == "platform"


async def test_product_delete_refused_while_services_use_it(ctx: AppContext) -> None:
    await _platform(ctx)
    product = await products.create_product(ctx, {"name": "VPS S", "platform": "vf-main"}, ACTOR)
    async with ctx.db.session() as session:
        session.add(Service(billing_service_id="500", client_id="42", product_id=product.id))
    with pytest.raises(Conflict, match="1 service"):
        await products.delete_product(ctx, product.id, ACTOR)
    assert (await products.get_product(ctx, product.id)).name == "VPS S"
