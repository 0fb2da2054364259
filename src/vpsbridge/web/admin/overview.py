"""The dashboard: services by state, failing jobs and the stock summary."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vpsbridge.services import admin_console
from vpsbridge.web.admin.deps import Signed
from vpsbridge.web.admin.wording import AdminRoute
from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui import render

router = APIRouter(route_class=AdminRoute, include_in_schema=False)


@router.get("/")
async def dashboard(request: Request, operator: Signed) -> Response:
    board = await admin_console.dashboard(get_ctx(request))
    return render(request, "admin/dashboard.html", {"op": operator, "board": board, "nav": "dashboard"})
