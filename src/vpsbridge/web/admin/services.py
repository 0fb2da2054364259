"""Services: the filtered list (filters remembered per browser), the detail page and its actions.

Lifecycle actions go through :mod:`vpsbridge.services.provisioning` (power, terminate) and the
portal service (rebuild, "open the portal as this client"), so the console does exactly what the
billing bridge and the portal do, with the operator as the audited actor.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vpsbridge.services import admin_console, provisioning
from vpsbridge.services.admin_console import ServiceFilter
from vpsbridge.services.platforms import list_platforms
from vpsbridge.services.products import list_products
from vpsbridge.web.admin.deps import PREFIX, Operator, Signed, flash_job, flash_of, int_param, see_other
from vpsbridge.web.admin.forms import lines, pretty, text
from vpsbridge.web.admin.wording import AdminRoute, power_word, say
from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui import UiError, _, render
from vpsbridge.web.ui.i18n import N_

router = APIRouter(route_class=AdminRoute, include_in_schema=False)

FILTER_COOKIE = "vpsb_admin_service_filters"
FILTER_KEYS = ("status", "platform", "product", "client", "q")
POWER_ACTIONS = ("start", "shutdown", "restart", "stop", "reset")
PAGE = 50
#: What a terminate answered (its ``outcome``) -> the sentence the operator reads.
TERMINATE_MESSAGES = {
    "queued": N_("Termination queued; its job deletes the server on the platform."),
    "unchanged": N_("The service is already terminated or being terminated."),
    "done": N_("No server exists on the platform, so the service is terminated now."),
}
#: A power action is always handed to the platform (``accepted`` or ``queued``); ``%(action)s`` is
#: the action's name as its button shows it.
POWER_SENT = N_("'%(action)s' was sent to the platform; its job follows the platform's task.")


def _filters_from(params: Any) -> dict[str, str]:
    return {k: str(params.get(k, "")).strip()[:100] for k in FILTER_KEYS if str(params.get(k, "")).strip()}


@router.get("/services")
async def services_page(request: Request, operator: Signed) -> Response:
    """The list; a visit without filters re-applies the ones this browser used last."""
    ctx = get_ctx(request)
    params = request.query_params
    remember: str | None = None
    if "reset" in params:
        chosen: dict[str, str] = {}
        remember = ""
    elif any(k in params for k in FILTER_KEYS):
        chosen = _filters_from(params)
        remember = urllib.parse.urlencode(chosen)
    else:
        saved = urllib.parse.parse_qs(request.cookies.get(FILTER_COOKIE, ""))
        chosen = _filters_from({k: v[0] for k, v in saved.items() if v})
    status = chosen.get("status")
    flt = ServiceFilter(
        status=status if status in admin_console.SERVICE_STATUSES else None,
        platform_id=int(chosen["platform"]) if chosen.get("platform", "").isdigit() else None,
        product_id=int(chosen["product"]) if chosen.get("product", "").isdigit() else None,
        client_id=chosen.get("client"),
        q=chosen.get("q"),
        limit=PAGE,
        offset=int_param(request, "offset") or 0,
    )
    rows, total = await admin_console.list_services(ctx, flt)
    response = render(
        request,
        "admin/services.html",
        {
            "op": operator,
            "nav": "services",
            "rows": rows,
            "total": total,
            "filters": chosen,
            "flt": flt,
            "statuses": admin_console.SERVICE_STATUSES,
            "platforms": await list_platforms(ctx),
            "products": await list_products(ctx),
            "page": PAGE,
        },
    )
    if remember is not None:
        settings = request.app.state.settings
        response.set_cookie(
            FILTER_COOKIE,
            remember,
            max_age=180 * 86400,
            path=PREFIX,
            secure=settings.secure_cookies,
            httponly=True,
            samesite="lax",
        )
    return response


async def _detail(request: Request, operator: Operator, service_id: int, **extra: Any) -> Response:
    detail = await admin_console.service_detail(get_ctx(request), service_id)
    message, flash_kind = flash_of(request)
    values: dict[str, Any] = {
        "op": operator,
        "nav": "services",
        "d": detail,
        "s": detail.service,
        "server_json": pretty(detail.server_object),
        "power_actions": POWER_ACTIONS,
        "findings": None,
        "panel_url": None,
        "flash": message,
        "flash_kind": flash_kind,
        "flash_job": flash_job(request),
    }
    values.update(extra)
    return render(request, "admin/service.html", values)


@router.get("/services/{service_id}")
async def service_page(request: Request, service_id: int, operator: Signed) -> Response:
    return await _detail(request, operator, service_id)


@router.post("/services/{service_id}/server-id")
async def service_server_id(request: Request, service_id: int, operator: Signed) -> Response:
    form = await request.form()
    await admin_console.set_server_external_id(
        get_ctx(request), service_id, text(form, "external_id"), operator.actor
    )
    return see_other(f"{PREFIX}/services/{service_id}", flash=_(request, "Server id saved."))


@router.post("/services/{service_id}/refresh")
async def service_refresh(request: Request, service_id: int, operator: Signed) -> Response:
    await admin_console.refresh_server_object(get_ctx(request), service_id, operator.actor)
    return see_other(
        f"{PREFIX}/services/{service_id}", flash=_(request, "Server object updated from the platform.")
    )


@router.post("/services/{service_id}/validate")
async def service_validate(request: Request, service_id: int, operator: Signed) -> Response:
    findings = await admin_console.validate_service(get_ctx(request), service_id)
    shown = [(f.level, say(request, f.wording)) for f in findings]
    return await _detail(request, operator, service_id, findings=shown)


@router.post("/services/{service_id}/power")
async def service_power(request: Request, service_id: int, operator: Signed) -> Response:
    form = await request.form()
    action = text(form, "action")
    if action not in POWER_ACTIONS:
        raise UiError(422, "Choose one of the power actions on the service page.", code="invalid")
    out = await provisioning.power_service(get_ctx(request), service_id, action, operator.actor)  # type: ignore[arg-type]
    # The service's own ``message`` is English for the API; the console words the outcome itself.
    return see_other(
        f"{PREFIX}/services/{service_id}",
        flash=_(request, POWER_SENT, action=power_word(request, action)),
        job=out.job_id,
    )


@router.post("/services/{service_id}/terminate")
async def service_terminate(request: Request, service_id: int, operator: Signed) -> Response:
    out = await provisioning.terminate_service(get_ctx(request), service_id, operator.actor)
    return see_other(
        f"{PREFIX}/services/{service_id}",
        flash=_(request, TERMINATE_MESSAGES.get(out.outcome, TERMINATE_MESSAGES["queued"])),
        kind="warning",
        job=out.job_id,
    )


@router.post("/services/{service_id}/platform-login")
async def service_platform_login(request: Request, service_id: int, operator: Signed) -> Response:
    """The panel link is shown, not redirected to: the page's CSP keeps form posts on this site."""
    url = await admin_console.platform_login_url(get_ctx(request), service_id, operator.actor)
    return await _detail(request, operator, service_id, panel_url=url)


@router.post("/services/{service_id}/portal")
async def service_portal(request: Request, service_id: int, operator: Signed) -> Response:
    """Open the client portal as this service's owner (a one-time link minted for the operator)."""
    from vpsbridge.services import portal

    base = f"{request.url.scheme}://{request.url.netloc}"
    link = await portal.mint_portal_link(get_ctx(request), service_id, operator.actor, base_url=base)
    return see_other(link.url)


@router.get("/services/{service_id}/rebuild")
async def service_rebuild_page(request: Request, service_id: int, operator: Signed) -> Response:
    from vpsbridge.services import portal

    ctx = get_ctx(request)
    service = await provisioning.get_service(ctx, service_id)
    owned = await portal.owned_service(ctx, service.client_id, service_id)
    gallery = await portal.os_gallery(ctx, owned)
    return render(
        request, "admin/rebuild.html", {"op": operator, "nav": "services", "s": service, "gallery": gallery}
    )


@router.post("/services/{service_id}/rebuild")
async def service_rebuild(request: Request, service_id: int, operator: Signed) -> Response:
    from vpsbridge.services import portal

    ctx = get_ctx(request)
    form = await request.form()
    service = await provisioning.get_service(ctx, service_id)
    owned = await portal.owned_service(ctx, service.client_id, service_id)
    job_id = await portal.rebuild(ctx, owned, text(form, "os"), lines(form, "ssh_keys"), operator.actor)
    return see_other(
        f"{PREFIX}/services/{service_id}", flash=_(request, "Reinstall started."), kind="warning", job=job_id
    )
