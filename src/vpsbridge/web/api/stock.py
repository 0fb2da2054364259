"""``/api/v1/stock``: what every product shows, "recalculate now", and why a product shows what it shows.

``{product}`` is a product id or name. Recalculating asks the platforms afresh (cached capacity is
dropped first), so it is a ``write`` operation and audited like any other.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from vpsbridge.services import stock
from vpsbridge.services.stock import RecalcReport, StockExplanation, StockResultOut
from vpsbridge.web.api.auth import AuditedRoute, Authorize
from vpsbridge.web.deps import Ctx

router = APIRouter(
    prefix="/stock", tags=["stock"], route_class=AuditedRoute, dependencies=[Depends(Authorize())]
)


class RecalculateRequest(BaseModel):
    """Products to recalculate (ids or names); empty or absent = every stock-controlled product."""

    products: list[str] | None = None


@router.get("", summary="Stock of every product (stored results)")
async def list_stock(ctx: Ctx) -> list[StockResultOut]:
    return await stock.results(ctx)


@router.post("/recalculate", summary="Recalculate now")
async def recalculate(ctx: Ctx, body: RecalculateRequest | None = None) -> RecalcReport:
    refs = body.products if body is not None and body.products else None
    return await stock.recalculate(ctx, refs, forget=True)


@router.get("/{product}/explain", summary="Why a product shows what it shows")
async def explain(
    ctx: Ctx, product: str, fresh: bool = Query(False, description="Recompute before explaining.")
) -> StockExplanation:
    return await stock.explain(ctx, product, fresh=fresh)
