"""Computing and storing stock: the recalculation every trigger (periodic task, operator, billing) uses.

Products are grouped by platform; each platform gets one driver and one stock source for the run, so
shared packages and groups are fetched once and concurrently. A product already being computed in
this process is joined, not computed twice (single-flight). Results land in ``stock_results`` in one
transaction: a known outcome replaces the quantity, an unknown one keeps the last known quantity and
records why (the billing side is then told to leave its stock alone).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vpsbridge.cache.base import SingleFlight
from vpsbridge.services.errors import NotFound
from vpsbridge.services.lookup import Ref, find_by_ref
from vpsbridge.services.stock.outcome import ProductInputs, StockOutcome
from vpsbridge.services.stock.schemas import RecalcReport, RecalcSummary, StockResultOut
from vpsbridge.services.stock.sources import PlatformInfo, StockSource, open_driver, source_for
from vpsbridge.store.models import Platform, Product, StockResult, utcnow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

log = structlog.stdlib.get_logger("vpsbridge.stock")

#: Results at most this old are answered as they are.
FRESH_SECONDS = 30.0
#: Page views (product and cart pages) recompute one product at most once per this many seconds.
PAGE_RECOMPUTE_SECONDS = 60.0

_FLIGHT = "stock_single_flight"


def _flight(ctx: AppContext) -> SingleFlight:
    flight = ctx.extras.get(_FLIGHT)
    if not isinstance(flight, SingleFlight):
        flight = SingleFlight()
        ctx.extras[_FLIGHT] = flight
    return flight


def inputs_of(row: Product) -> ProductInputs:
    return ProductInputs(
        id=row.id,
        name=row.name,
        billing_product_id=row.billing_product_id,
        platform_id=row.platform_id,
        placement=dict(row.placement or {}),
        plan=dict(row.plan or {}),
        buffer_pct=float(row.stock_buffer_pct if row.stock_buffer_pct is not None else 10.0),
    )


async def load_products(
    ctx: AppContext, ids: Iterable[int] | None = None, *, stock_controlled_only: bool = True
) -> tuple[list[ProductInputs], dict[int, PlatformInfo]]:
    """Product inputs (enabled, stock-controlled unless told otherwise) and their platforms."""
    async with ctx.db.session() as session:
        query = select(Product).order_by(Product.id)
        if ids is not None:
            query = query.where(Product.id.in_(list(ids)))
        if stock_controlled_only:
            query = query.where(Product.stock_control.is_(True), Product.enabled.is_(True))
        rows = list((await session.scalars(query)).all())
        platform_ids = {r.platform_id for r in rows}
        platforms: dict[int, PlatformInfo] = {}
        if platform_ids:
            for p in (await session.scalars(select(Platform).where(Platform.id.in_(platform_ids)))).all():
                platforms[p.id] = PlatformInfo(
                    id=p.id,
                    name=p.name,
                    type=p.type,
                    url=p.url,
                    credentials=ctx.secrets.decrypt_json(p.credentials_enc) if p.credentials_enc else {},
                    verify_tls=p.verify_tls,
                    ca_bundle=p.ca_bundle,
                    settings=dict(p.settings or {}),
                    enabled=p.enabled,
                )
    return [inputs_of(r) for r in rows], platforms


async def _compute_platform(
    ctx: AppContext, platform: PlatformInfo, products: Sequence[ProductInputs], *, forget: bool
) -> dict[int, StockOutcome]:
    if not platform.enabled:
        return {
            p.id: StockOutcome.unknown_because(f"platform {platform.name!r} is disabled") for p in products
        }
    cls = source_for(platform.type)
    if cls is None:
        reason = f"platform type {platform.type!r} does not report stock yet"
        return {p.id: StockOutcome.unknown_because(reason) for p in products}
    driver = open_driver(ctx, platform)
    source: StockSource = cls(ctx, platform, driver)
    try:
        if forget:
            for product in products:
                await source.forget(product)
        flight = _flight(ctx)

        async def one(product: ProductInputs) -> StockOutcome:
            async def run() -> StockOutcome:
                try:
                    return await source.quantity(product)
                except Exception as exc:  # never let one product's bug stop the others
                    log.exception("stock_compute_failed", product_id=product.id)
                    return StockOutcome.unknown_because(f"internal error: {type(exc).__name__}: {exc}")

            if forget:  # a fresh look is wanted: do not join a computation that may predate the event
                return await run()
            return await flight.do(f"stock:product:{product.id}", run)

        outcomes = await asyncio.gather(*(one(p) for p in products))
    finally:
        await driver.aclose()
    return {p.id: o for p, o in zip(products, outcomes, strict=True)}


async def compute(
    ctx: AppContext,
    products: Sequence[ProductInputs],
    platforms: dict[int, PlatformInfo],
    *,
    forget: bool = False,
) -> dict[int, StockOutcome]:
    """Outcomes for ``products``, every platform concurrently; ``forget`` drops cached capacity first."""
    by_platform: dict[int, list[ProductInputs]] = {}
    for product in products:
        by_platform.setdefault(product.platform_id, []).append(product)
    parts = await asyncio.gather(
        *(_compute_platform(ctx, platforms[pid], items, forget=forget) for pid, items in by_platform.items())
    )
    merged: dict[int, StockOutcome] = {}
    for part in parts:
        merged.update(part)
    return merged


async def store(ctx: AppContext, outcomes: dict[int, StockOutcome]) -> None:
    """Write outcomes to ``stock_results`` in one transaction (retried once on a concurrent insert)."""
    if not outcomes:
        return
    for attempt in (1, 2):
        try:
            await _store_once(ctx, outcomes)
            return
        except IntegrityError:
            if attempt == 2:
                raise


async def _store_once(ctx: AppContext, outcomes: dict[int, StockOutcome]) -> None:
    now = utcnow()
    async with ctx.db.session() as session:
        query = select(StockResult).where(StockResult.product_id.in_(list(outcomes)))
        existing = {r.product_id: r for r in (await session.scalars(query)).all()}
        for product_id, outcome in outcomes.items():
            row = existing.get(product_id)
            if row is None:
                row = StockResult(product_id=product_id, quantity=None, breakdown={})
                session.add(row)
            if outcome.known:
                row.quantity = outcome.quantity
                row.breakdown = outcome.breakdown
            else:  # keep the last known quantity; say why this run could not replace it
                row.breakdown = {"unknown": list(outcome.unknown), "last_known_quantity": row.quantity}
            row.status = outcome.status
            row.computed_at = now
            row.updated_at = now
        await session.flush()


def age_of(computed_at: dt.datetime | None, now: dt.datetime | None = None) -> float | None:
    if computed_at is None:
        return None
    when = computed_at if computed_at.tzinfo else computed_at.replace(tzinfo=dt.UTC)
    return max(0.0, ((now or utcnow()) - when).total_seconds())


def answer_of(status: str, quantity: int | None) -> int | None:
    """What the billing side may write: a quantity for known outcomes, ``None`` (leave alone) else."""
    return quantity if status in ("ok", "missing", "disabled") else None


def summarise(outcomes: dict[int, StockOutcome]) -> RecalcSummary:
    values = [o.quantity for o in outcomes.values()]
    return RecalcSummary(
        total=len(values),
        updated=sum(1 for v in values if v is not None and v > 0),
        zeroed=sum(1 for v in values if v == 0),
        skipped=sum(1 for v in values if v is None),
    )


async def recalculate(
    ctx: AppContext, refs: Sequence[Ref] | None = None, *, forget: bool = False
) -> RecalcReport:
    """ "Recalculate now": every stock-controlled product (or the ones named), stored and summarised."""
    ids: list[int] | None = None
    if refs is not None:
        async with ctx.db.session() as session:
            ids = [(await find_by_ref(session, Product, ref, label="product")).id for ref in refs]
    products, platforms = await load_products(ctx, ids, stock_controlled_only=refs is None)
    outcomes = await compute(ctx, products, platforms, forget=forget)
    await store(ctx, outcomes)
    log.info("stock_recalculated", **summarise(outcomes).model_dump())
    rows = await results(ctx, [p.id for p in products])
    return RecalcReport(
        results={str(pid): o.quantity for pid, o in outcomes.items()},
        summary=summarise(outcomes),
        products=rows,
    )


async def results(ctx: AppContext, ids: Sequence[int] | None = None) -> list[StockResultOut]:
    """Stored stock of every product (or of ``ids``), stock-controlled or not, oldest id first."""
    now = utcnow()
    async with ctx.db.session() as session:
        query: Any = (
            select(Product, Platform.name, StockResult)
            .join(Platform, Platform.id == Product.platform_id)
            .outerjoin(StockResult, StockResult.product_id == Product.id)
            .order_by(Product.id)
        )
        if ids is not None:
            query = query.where(Product.id.in_(list(ids)))
        out = []
        for product, platform_name, result in (await session.execute(query)).all():
            unknown = list((result.breakdown or {}).get("unknown") or []) if result is not None else []
            out.append(
                StockResultOut(
                    product_id=product.id,
                    product=product.name,
                    billing_product_id=product.billing_product_id,
                    platform=platform_name,
                    stock_control=product.stock_control,
                    quantity=result.quantity if result is not None else None,
                    status=result.status if result is not None else "never",
                    computed_at=result.computed_at if result is not None else None,
                    age_seconds=age_of(result.computed_at, now) if result is not None else None,
                    unknown=unknown,
                )
            )
        return out


async def result_of(ctx: AppContext, ref: Ref) -> tuple[StockResultOut, dict[str, Any], float]:
    """One product's stored result, full breakdown and buffer (for explain)."""
    async with ctx.db.session() as session:
        product = await find_by_ref(session, Product, ref, label="product")
        stored = await session.scalar(select(StockResult).where(StockResult.product_id == product.id))
        breakdown = dict(stored.breakdown or {}) if stored is not None else {}
        buffer = float(product.stock_buffer_pct)
        product_id = product.id
    rows = await results(ctx, [product_id])
    if not rows:
        raise NotFound(f"product {ref!r} not found")
    return rows[0], breakdown, buffer
