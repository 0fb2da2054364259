"""Stock: the stored result of every product, why a product shows what it shows, recalculate now."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vpsbridge.services import stock
from vpsbridge.services.audit import record
from vpsbridge.web.admin.deps import Signed, flash_of
from vpsbridge.web.admin.forms import pretty
from vpsbridge.web.admin.wording import AdminRoute
from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui import render

router = APIRouter(route_class=AdminRoute, include_in_schema=False)


@router.get("/stock")
async def stock_page(request: Request, operator: Signed) -> Response:
    message, kind = flash_of(request)
    rows = await stock.results(get_ctx(request))
    return render(
        request,
        "admin/stock.html",
        {"op": operator, "nav": "stock", "rows": rows, "summary": None, "flash": message, "flash_kind": kind},
    )


@router.get("/stock/{product_id}")
async def stock_explain(request: Request, product_id: int, operator: Signed) -> Response:
    explanation = await stock.explain(get_ctx(request), product_id)
    return render(
        request,
        "admin/stock_explain.html",
        {
            "op": operator,
            "nav": "stock",
            "e": explanation,
            "lines": stock.explain_lines(explanation),
            "breakdown_json": pretty(explanation.breakdown),
        },
    )


@router.post("/stock/recalculate")
async def stock_recalculate(request: Request, operator: Signed) -> Response:
    ctx = get_ctx(request)
    report = await stock.recalculate(ctx, forget=True)
    async with ctx.db.session() as session:
        await record(session, operator.actor, "stock.recalculate", "stock", None, report.summary.model_dump())
    rows = await stock.results(ctx)
    return render(
        request,
        "admin/stock.html",
        {
            "op": operator,
            "nav": "stock",
            "rows": rows,
            "summary": report.summary,
            "flash": None,
            "flash_kind": "info",
        },
    )
