"""The upstream request log (searchable, redacted) and the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vpsbridge.services import admin_console
from vpsbridge.services.admin_console import AuditQuery, UpstreamQuery
from vpsbridge.web.admin.deps import Signed, int_param
from vpsbridge.web.admin.wording import AdminRoute
from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui import UiError, render

router = APIRouter(route_class=AdminRoute, include_in_schema=False)
PAGE = 50


def _q(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value[:200] or None


@router.get("/upstream")
async def upstream_page(request: Request, operator: Signed) -> Response:
    ctx = get_ctx(request)
    outcome = _q(request, "outcome")
    query = UpstreamQuery(
        q=_q(request, "q"),
        client=_q(request, "client"),
        method=_q(request, "method"),
        outcome=outcome if outcome in admin_console.OUTCOMES else None,
        status=int_param(request, "status"),
        job_id=int_param(request, "job"),
        before_id=int_param(request, "before"),
        limit=PAGE,
    )
    rows = await admin_console.search_upstream(ctx, query)
    return render(
        request,
        "admin/upstream.html",
        {
            "op": operator,
            "nav": "upstream",
            "rows": rows,
            "query": query,
            "clients": await admin_console.upstream_clients(ctx),
            "outcomes": admin_console.OUTCOMES,
            "more": len(rows) == PAGE,
        },
    )


@router.get("/upstream/{request_id}")
async def upstream_detail(request: Request, request_id: int, operator: Signed) -> Response:
    row = await admin_console.get_upstream(get_ctx(request), request_id)
    if row is None:
        raise UiError(
            404,
            "Upstream request %(id)s is not in the log (it may have been purged).",
            code="not_found",
            values={"id": request_id},
        )
    return render(request, "admin/upstream_detail.html", {"op": operator, "nav": "upstream", "r": row})


@router.get("/audit")
async def audit_page(request: Request, operator: Signed) -> Response:
    query = AuditQuery(
        actor_type=_q(request, "actor_type"),
        actor_id=_q(request, "actor_id"),
        action=_q(request, "action"),
        object_type=_q(request, "object_type"),
        object_id=_q(request, "object_id"),
        q=_q(request, "q"),
        before_id=int_param(request, "before"),
        limit=PAGE,
    )
    rows = await admin_console.list_audit(get_ctx(request), query)
    return render(
        request,
        "admin/audit.html",
        {"op": operator, "nav": "audit", "rows": rows, "query": query, "more": len(rows) == PAGE},
    )
