"""Stock for the billing bridge: WHMCS pulls quantities, because only its PHP can write ``tblproducts.qty``.

The bridge's hooks (after every provision and termination, on product and cart pages, after the cron
run) post their stock-controlled products and, in the same request, write each non-null quantity they
get back; ``None`` means *leave it alone* (unknown, not stock-controlled, or not due). The rules:

* products are looked up (and created or updated, when the hook sends their settings) by billing id;
  the Location option's values become ``placement.location_group_ids`` and WHMCS's stock-control
  flag becomes ``stock_control`` - only stock-controlled products ever get a quantity;
* after a provision or termination the products are recomputed at once, with fresh capacity;
* otherwise a result at most 30 s old is answered as it is; an older one is recomputed (single-flight)
  - from page and cart views at most once per product per 60 s, after the cron run always.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog
from sqlalchemy import select

from vpsbridge.services import products as product_service
from vpsbridge.services.audit import Actor
from vpsbridge.services.errors import ServiceError
from vpsbridge.services.stock.outcome import ProductInputs
from vpsbridge.services.stock.recalc import (
    FRESH_SECONDS,
    PAGE_RECOMPUTE_SECONDS,
    age_of,
    answer_of,
    compute,
    inputs_of,
    load_products,
    store,
)
from vpsbridge.services.stock.sources import positive_int
from vpsbridge.store.models import Product, StockResult, utcnow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

log = structlog.stdlib.get_logger("vpsbridge.stock")

#: Why the hook asks: ``page``/``cart`` views, right after a ``provision``/``terminate``, after ``cron``.
Trigger = Literal["page", "cart", "provision", "terminate", "cron"]
TRIGGERS: tuple[str, ...] = ("page", "cart", "provision", "terminate", "cron")
BRIDGE_ACTOR = Actor(type="bridge", id="whmcs")


@dataclass(frozen=True)
class BillingStockQuery:
    """One product as the billing hook posts it.

    ``locations`` are the values of the product's Location option (``"3|London"`` or ``3``): every
    hypervisor group it may be placed in; ``None`` keeps what is stored. ``product`` optionally carries
    product settings (:class:`~vpsbridge.services.schemas.ProductCreate` fields; ``platform`` is needed
    to create a product vpsbridge does not know yet).
    """

    billing_product_id: str
    stock_control: bool = True
    locations: Sequence[str | int] | None = None
    product: Mapping[str, Any] | None = None


def location_group_ids(values: Sequence[str | int]) -> list[int]:
    ids: list[int] = []
    for value in values:
        number = positive_int(value)
        if number is not None and number not in ids:
            ids.append(number)
    return ids


def _wanted(row: Product | None, query: BillingStockQuery) -> dict[str, Any]:
    """The product fields the query implies; for a stored product only those that differ.

    A stored product keeps its platform (moving a product between platforms is an operator's
    decision), so a page view costs no write unless WHMCS really changed something.
    """
    fields: dict[str, Any] = dict(query.product or {})
    fields["stock_control"] = bool(query.stock_control)
    if query.locations is not None or "placement" in fields:
        placement = dict(row.placement or {}) if row is not None else {}
        placement.update(dict(fields.get("placement") or {}))
        if query.locations is not None:
            placement["location_group_ids"] = location_group_ids(query.locations)
        fields["placement"] = placement
    if row is None:
        return fields
    fields.pop("platform", None)
    return {k: v for k, v in fields.items() if getattr(row, k, None) != v}


def _answerable(inputs: ProductInputs, stock_control: bool, enabled: bool) -> ProductInputs | None:
    return inputs if stock_control and enabled else None


async def _sync(ctx: AppContext, queries: Sequence[BillingStockQuery]) -> dict[str, ProductInputs | None]:
    """Upsert the posted products; the inputs of each stock-controlled one (``None``: no answer)."""
    ids = [q.billing_product_id for q in queries]
    async with ctx.db.session() as session:
        found = (await session.scalars(select(Product).where(Product.billing_product_id.in_(ids)))).all()
        rows = {r.billing_product_id: r for r in found}
        current = {bid: _answerable(inputs_of(r), r.stock_control, r.enabled) for bid, r in rows.items()}
        patches = {q.billing_product_id: _wanted(rows.get(q.billing_product_id), q) for q in queries}
    known: dict[str, ProductInputs | None] = {}
    for query in queries:
        bid = query.billing_product_id
        patch = patches[bid]
        exists = bid in current
        if exists and not patch:
            known[bid] = current[bid]
            continue
        if not exists and "platform" not in patch:
            known[bid] = None  # a product vpsbridge does not know, and nothing to create it from
            continue
        try:
            out = await product_service.upsert_product_from_billing(ctx, bid, patch, BRIDGE_ACTOR)
        except ServiceError as exc:
            log.warning("stock_product_sync_failed", billing_product_id=bid, error=str(exc))
            known[bid] = current.get(bid)
            continue
        inputs = ProductInputs(
            id=out.id,
            name=out.name,
            billing_product_id=bid,
            platform_id=out.platform_id,
            placement=dict(out.placement),
            plan=dict(out.plan),
            buffer_pct=float(out.stock_buffer_pct),
        )
        known[bid] = _answerable(inputs, out.stock_control, out.enabled)
    return known


async def stock_for_billing(
    ctx: AppContext, products: list[BillingStockQuery], *, trigger: Trigger = "page"
) -> dict[str, int | None]:
    """``{billing product id: quantity to write, or None to leave it alone}`` for the posted products."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown stock trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    known = await _sync(ctx, products)
    answers: dict[str, int | None] = {q.billing_product_id: None for q in products}
    wanted = {bid: inputs for bid, inputs in known.items() if inputs is not None}
    if not wanted:
        return answers
    event = trigger in ("provision", "terminate")
    due: list[ProductInputs] = []
    if event:
        due = list(wanted.values())
    else:
        now = utcnow()
        async with ctx.db.session() as session:
            query = select(StockResult).where(StockResult.product_id.in_([p.id for p in wanted.values()]))
            stored = {r.product_id: r for r in (await session.scalars(query)).all()}
        for bid, inputs in wanted.items():
            row = stored.get(inputs.id)
            age = age_of(row.computed_at, now) if row is not None else None
            if row is not None and age is not None and age <= FRESH_SECONDS:
                answers[bid] = answer_of(row.status, row.quantity)
                continue
            if trigger in ("page", "cart"):
                decision = await ctx.cache.hit(f"stock:page:{inputs.id}", 1, PAGE_RECOMPUTE_SECONDS)
                if not decision.allowed:
                    continue  # recomputed a moment ago for another visitor; leave it alone meanwhile
            due.append(inputs)
    if due:
        _, platforms = await load_products(ctx, [p.id for p in due], stock_controlled_only=False)
        outcomes = await compute(ctx, due, platforms, forget=event)
        await store(ctx, outcomes)
        by_id = {p.id: bid for bid, p in wanted.items()}
        for product_id, outcome in outcomes.items():
            answers[by_id[product_id]] = answer_of(outcome.status, outcome.quantity)
    return answers
