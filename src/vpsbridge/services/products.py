"""Products: the single source of product settings (platform, placement, plan, stock, DNS zone).

Operators create products by hand, and the billing bridge upserts them from what WHMCS sends with
:func:`upsert_product_from_billing`, keyed by the billing product id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.services.inputs import changes, parse_input
from vpsbridge.services.lookup import Ref, find_by_ref, flush_or_conflict
from vpsbridge.services.schemas import ProductCreate, ProductOut, ProductUpdate
from vpsbridge.store.models import Platform, Product, Service

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

LABEL = "product"
_NOT_NULL = (
    "name",
    "platform",
    "placement",
    "plan",
    "stock_control",
    "stock_buffer_pct",
    "settings",
    "enabled",
)


def product_out(row: Product, platform_name: str) -> ProductOut:
    return ProductOut(
        id=row.id,
        name=row.name,
        billing_product_id=row.billing_product_id,
        platform_id=row.platform_id,
        platform_name=platform_name,
        placement=dict(row.placement or {}),
        plan=dict(row.plan or {}),
        stock_control=row.stock_control,
        stock_buffer_pct=row.stock_buffer_pct,
        dns_zone=row.dns_zone,
        settings=dict(row.settings or {}),
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _platform(session: AsyncSession, ref: Ref) -> Platform:
    try:
        return await find_by_ref(session, Platform, ref, label="platform")
    except NotFound as exc:
        raise Invalid(str(exc), field="platform") from None


def _normalise_zone(zone: str | None) -> str | None:
    if zone is None or not zone.strip():
        return None
    return zone.strip().lower().rstrip(".") + "."


async def _ensure_unique_billing_id(
    session: AsyncSession, billing_id: str | None, *, exclude_id: int | None = None
) -> None:
    if billing_id is None:
        return
    query = select(Product.id).where(Product.billing_product_id == billing_id)
    if exclude_id is not None:
        query = query.where(Product.id != exclude_id)
    if (await session.execute(query)).first() is not None:
        raise Conflict(f"another product already has billing product id {billing_id!r}")


async def _out(session: AsyncSession, row: Product) -> ProductOut:
    platform = await session.get(Platform, row.platform_id)
    return product_out(row, platform.name if platform else "")


async def create_product(
    ctx: AppContext, data: ProductCreate | Mapping[str, Any], actor: Actor
) -> ProductOut:
    spec = parse_input(ProductCreate, data)
    async with ctx.db.session() as session:
        return await _create(session, spec, actor)


async def _create(session: AsyncSession, spec: ProductCreate, actor: Actor) -> ProductOut:
    platform = await _platform(session, spec.platform)
    await _ensure_unique_billing_id(session, spec.billing_product_id)
    values = spec.model_dump(exclude={"platform"})
    values["dns_zone"] = _normalise_zone(spec.dns_zone)
    row = Product(platform_id=platform.id, **values)
    session.add(row)
    await flush_or_conflict(
        session, f"another product already has billing product id {spec.billing_product_id!r}"
    )
    details = dict(values, platform_id=platform.id)
    await record(session, actor, "product.create", LABEL, row.id, details)
    return product_out(row, platform.name)


async def list_products(ctx: AppContext) -> list[ProductOut]:
    async with ctx.db.session() as session:
        query = (
            select(Product, Platform.name)
            .join(Platform, Platform.id == Product.platform_id)
            .order_by(Product.name, Product.id)
        )
        return [product_out(row, name) for row, name in (await session.execute(query)).all()]


async def get_product(ctx: AppContext, ref: Ref) -> ProductOut:
    async with ctx.db.session() as session:
        return await _out(session, await find_by_ref(session, Product, ref, label=LABEL))


async def get_product_by_billing_id(ctx: AppContext, billing_product_id: str) -> ProductOut | None:
    async with ctx.db.session() as session:
        row = await session.scalar(select(Product).where(Product.billing_product_id == billing_product_id))
        return None if row is None else await _out(session, row)


async def update_product(
    ctx: AppContext, ref: Ref, data: ProductUpdate | Mapping[str, Any], actor: Actor
) -> ProductOut:
    patch = changes(parse_input(ProductUpdate, data))
    async with ctx.db.session() as session:
        row = await find_by_ref(session, Product, ref, label=LABEL)
        return await _update(session, row, patch, actor)


async def _update(session: AsyncSession, row: Product, patch: dict[str, Any], actor: Actor) -> ProductOut:
    for field in _NOT_NULL:
        if field in patch and patch[field] is None:
            raise Invalid(f"{field} cannot be empty", field=field)
    if "platform" in patch:
        patch["platform_id"] = (await _platform(session, patch.pop("platform"))).id
    if "billing_product_id" in patch:
        await _ensure_unique_billing_id(session, patch["billing_product_id"], exclude_id=row.id)
    if "dns_zone" in patch:
        patch["dns_zone"] = _normalise_zone(patch["dns_zone"])
    for field, value in patch.items():
        setattr(row, field, value)
    await flush_or_conflict(
        session, f"another product already has billing product id {row.billing_product_id!r}"
    )
    await record(session, actor, "product.update", LABEL, row.id, {"fields": sorted(patch), "values": patch})
    return await _out(session, row)


async def delete_product(ctx: AppContext, ref: Ref, actor: Actor) -> None:
    """Delete a product no billing service uses any more."""
    async with ctx.db.session() as session:
        row = await find_by_ref(session, Product, ref, label=LABEL)
        count = await session.scalar(
            select(func.count()).select_from(Service).where(Service.product_id == row.id)
        )
        if count:
            raise Conflict(
                f"product {row.name!r} is still used by {count} service{'s' if count != 1 else ''}; "
                "disable it instead, or terminate those services first",
                details={"product_id": row.id},
            )
        await record(session, actor, "product.delete", LABEL, row.id, {"name": row.name})
        await session.delete(row)
        await flush_or_conflict(session, f"product {row.name!r} is still in use")


async def upsert_product_from_billing(
    ctx: AppContext, billing_product_id: str, fields: Mapping[str, Any], actor: Actor
) -> ProductOut:
    """Create or update the product the billing platform knows as ``billing_product_id``.

    WHMCS is where operators edit product settings, and it resends them with module calls; keying by
    the billing id makes repeated sends idempotent. ``fields`` are :class:`ProductCreate` fields
    (``platform`` is required when the product does not exist yet). An update audits only when
    something actually changed, so periodic resends do not flood the audit log.
    """
    data = dict(fields)
    data.pop("billing_product_id", None)
    async with ctx.db.session() as session:
        row = await session.scalar(select(Product).where(Product.billing_product_id == billing_product_id))
        if row is None:
            spec = parse_input(ProductCreate, dict(data, billing_product_id=billing_product_id))
            return await _create(session, spec, actor)
        patch = changes(parse_input(ProductUpdate, data))
        if "platform" in patch and patch["platform"] is not None:
            patch["platform_id"] = (await _platform(session, patch.pop("platform"))).id
        if "dns_zone" in patch:
            patch["dns_zone"] = _normalise_zone(patch["dns_zone"])
        patch = {k: v for k, v in patch.items() if getattr(row, k) != v}
        if not patch:
            return await _out(session, row)
        return await _update(session, row, patch, actor)
