"""The client portal's pages and actions, mounted at ``/portal``.

Every route that names a service runs :func:`owned` first: the ownership re-check against the
signed-in client (404 for anybody else's service) and, for server panels, the "is there a server yet"
check (409 with what to do). State-changing routes are POST only; the session guard has already
checked same-origin and the CSRF token, and each action counts against its own rate limit
(rebuild 60 s, password 30 s, power 10 s, console, panel sign-in and credit 5 s) before the platform is
called.

Forms post back and are redirected (303) to the overview with a ``done=`` key naming a fixed,
translated message; JSON callers (``Accept: application/json``, the power buttons' ``fetch``) get
JSON instead, so the same routes serve the page with and without JavaScript.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse, Response

from vpsbridge.platforms.models import Capability, PowerAction
from vpsbridge.services import portal, portal_billing
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import ServiceError
from vpsbridge.services.provisioning.flavours import platform_capabilities
from vpsbridge.web.deps import client_ip, get_ctx
from vpsbridge.web.portal.auth import KIND, PortalClient, portal_client
from vpsbridge.web.portal.console import relay_console
from vpsbridge.web.ui import RateLimit, UiError, UiRoute, enforce_rate_limit, render, start_session
from vpsbridge.web.ui.i18n import N_
from vpsbridge.web.ui.templating import wants_json

router = APIRouter(prefix="/portal", route_class=UiRoute, include_in_schema=False)
Client = Annotated[PortalClient, Depends(portal_client)]

LIMITS: dict[str, RateLimit] = {
    "rebuild": RateLimit(1, 60),
    "password": RateLimit(1, 30),
    "power": RateLimit(1, 10),
    "console": RateLimit(1, 5),
    "panel_login": RateLimit(1, 5),
    "credit": RateLimit(1, 5),
    "rename": RateLimit(3, 30),
    "rdns": RateLimit(5, 30),
}
POWER_ACTIONS: dict[str, PowerAction] = {
    "start": "start",
    "shutdown": "shutdown",
    "restart": "restart",
    "stop": "stop",
}
#: Power states and DNS outcomes shown as badges (translated in the templates with ``_(state)``).
STATE_LABELS = (
    N_("running"),
    N_("stopped"),
    N_("building"),
    N_("suspended"),
    N_("terminating"),
    N_("unknown"),
    N_("ok"),
    N_("missing"),
    N_("unverified"),
    N_("no_zone"),
    N_("error"),
    N_("disabled"),
)
#: ``done=`` keys -> the message shown after a redirect (never text from the request).
DONE_MESSAGES: dict[str, str] = {
    "power": N_("The power action was sent; the state below updates in a moment."),
    "rename": N_("The server was renamed."),
    "rebuild": N_("The reinstall has started; it takes a few minutes."),
    "rdns": N_("The reverse DNS entry was saved."),
}


#: Service error codes of "Add credit" -> (status, the sentence shown; ``%(min)s``/``%(max)s`` filled).
CREDIT_PROBLEMS: dict[str, tuple[int, str]] = {
    "amount_invalid": (422, N_("Enter an amount between %(min)s and %(max)s, such as 20 or 20.50.")),
    "request_expired": (422, N_("This form has expired; reload the page and try again.")),
    "credit_refused": (422, N_("Credit cannot be added for this service; please contact support.")),
    "billing_unavailable": (
        503,
        N_(
            "Credit cannot be added here right now: the billing system is not connected. Nothing was charged."
        ),
    ),
    "billing_failed": (
        502,
        N_(
            "The billing system did not confirm the invoice. If one was created, it is listed under "
            "Invoices in your client area; otherwise try again in a few minutes."
        ),
    ),
    "conflict": (409, N_("This request is already being handled; wait a moment and reload the page.")),
}


async def owned(
    request: Request, client: PortalClient, service_id: int, *, provisioned: bool = True
) -> portal.OwnedService:
    service = await portal.owned_service(
        get_ctx(request), client.client_id, service_id, provisioned=provisioned
    )
    request.state.portal_service = service
    return service


def _need(service: portal.OwnedService, capability: Capability) -> None:
    if not service.supports(str(capability)):
        raise UiError(404, "This feature is not available for this server.", code="not_supported")


def _back(service_id: int, done: str, anchor: str = "") -> Response:
    return RedirectResponse(f"/portal/s/{service_id}?done={done}{anchor}", status_code=303)


async def _limit(ctx: AppContext, action: str, service: portal.OwnedService) -> None:
    await enforce_rate_limit(ctx, action, f"{service.client_id}:{service.id}", LIMITS[action])


# --- sign-in -------------------------------------------------------------------------------------


@router.get("/sso")
async def sso(request: Request, token: str = "") -> Response:
    """Exchange a one-time link for a session, then drop the token from the address bar."""
    ctx = get_ctx(request)
    signin = await portal.consume_portal_token(ctx, token)
    if signin is None:
        raise UiError(
            401,
            "This sign-in link has expired or was already used.",
            code="link_invalid",
            action="Open the portal again from your client area; links work once, for two minutes.",
        )
    response = RedirectResponse(f"/portal/s/{signin.service_id}", status_code=303)
    await start_session(request, response, KIND, signin.client_id, {"service_id": signin.service_id})
    try:
        landing = await portal.owned_service(ctx, signin.client_id, signin.service_id)
    except ServiceError:
        pass  # not provisioned yet: the overview explains that
    else:
        await portal.warm_gallery(ctx, landing)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.post("/signout")
async def signout(request: Request, client: Client) -> Response:
    from vpsbridge.web.ui import end_session

    response = render(request, "portal/signed_out.html")
    await end_session(request, response, KIND)
    return response


@router.get("/")
async def home(request: Request, client: Client) -> Response:
    services = await portal.client_services(get_ctx(request), client.client_id)
    if not services:
        raise UiError(404, "There are no active services in your account.", code="no_services")
    return RedirectResponse(f"/portal/s/{services[0].id}", status_code=303)


# --- pages ---------------------------------------------------------------------------------------


async def _page_context(
    request: Request, client: PortalClient, service: portal.OwnedService
) -> dict[str, Any]:
    ctx = get_ctx(request)
    return {
        "service": service,
        "services": await portal.client_services(ctx, client.client_id),
        "caps": platform_capabilities(service.platform_type),
        "via_bridge": client.via == "bridge",
        "panel_login": portal.has_panel_login(service.platform_type),
    }


@router.get("/s/{service_id}")
async def overview(request: Request, client: Client, service_id: int) -> Response:
    ctx = get_ctx(request)
    service = await owned(request, client, service_id, provisioned=False)
    values = await _page_context(request, client, service)
    if not service.provisioned:
        # The page still renders the switcher; the panels are replaced by the 409 explanation.
        try:
            await owned(request, client, service_id)
        except ServiceError as exc:
            return render(request, "portal/not_ready.html", {**values, "message": exc.message}, status=409)
    done = request.query_params.get("done", "")
    values.update(
        overview=await portal.overview(ctx, service),
        done_message=DONE_MESSAGES.get(done),
        billing_enabled=portal_billing.enabled(service),
    )
    panel = await portal.panel_origin(ctx, service) if values["panel_login"] else None
    return render(request, "portal/overview.html", values, form_action=(panel,) if panel else ())


@router.get("/s/{service_id}/state")
async def state(request: Request, client: Client, service_id: int) -> Response:
    """The power state for the badge (polled quickly after an action, slowly otherwise)."""
    ctx = get_ctx(request)
    service = await owned(request, client, service_id)
    try:
        info = await portal.server_info(ctx, service, fresh=True)
        value = str(info.get("state") or "unknown")
    except Exception:
        value = service.server_state or "unknown"
    return JSONResponse({"state": value}, headers={"Cache-Control": "no-store"})


@router.get("/s/{service_id}/stats")
async def stats(request: Request, client: Client, service_id: int) -> Response:
    service = await owned(request, client, service_id)
    _need(service, Capability.LIVE_STATS)
    return JSONResponse(
        await portal.live_stats(get_ctx(request), service), headers={"Cache-Control": "no-store"}
    )


@router.get("/s/{service_id}/traffic")
async def traffic(request: Request, client: Client, service_id: int) -> Response:
    service = await owned(request, client, service_id)
    _need(service, Capability.TRAFFIC)
    return JSONResponse(
        await portal.traffic(get_ctx(request), service), headers={"Cache-Control": "no-store"}
    )


@router.get("/s/{service_id}/backups")
async def backups(request: Request, client: Client, service_id: int) -> Response:
    service = await owned(request, client, service_id)
    _need(service, Capability.BACKUPS)
    items = await portal.backups(get_ctx(request), service)
    return render(request, "portal/_backups.html", {"backups": items, "service": service})


@router.get("/s/{service_id}/rdns")
async def rdns(request: Request, client: Client, service_id: int) -> Response:
    from vpsbridge.services.dns.client import ptr_overview

    service = await owned(request, client, service_id)
    assert service.server_id is not None
    try:
        rows = await ptr_overview(get_ctx(request), service.server_id)
    except ServiceError as exc:
        return render(request, "portal/_rdns.html", {"rows": [], "problem": exc.message, "service": service})
    return render(request, "portal/_rdns.html", {"rows": rows, "problem": None, "service": service})


def _billing_service(service: portal.OwnedService) -> None:
    if not portal_billing.enabled(service):
        raise UiError(404, "This feature is not available for this server.", code="not_supported")


async def _billing_fragment(request: Request, service: portal.OwnedService, **values: Any) -> Response:
    panel = await portal_billing.billing_panel(get_ctx(request), service)
    context = {
        "panel": panel,
        "service": service,
        "request_key": secrets.token_urlsafe(18),
        "issued": None,
        "problem": None,
        "problem_code": None,
        "problem_values": None,
        "amount": "",
        **values,
    }
    return render(request, "portal/_billing.html", context, headers={"Cache-Control": "no-store"})


@router.get("/s/{service_id}/billing")
async def billing(request: Request, client: Client, service_id: int) -> Response:
    """The self-service billing panel (balance, usage, report, "Add credit"), loaded when revealed."""
    service = await owned(request, client, service_id)
    _billing_service(service)
    return await _billing_fragment(request, service)


@router.get("/s/{service_id}/rebuild")
async def rebuild_page(request: Request, client: Client, service_id: int) -> Response:
    service = await owned(request, client, service_id)
    _need(service, Capability.BUILD)
    values = await _page_context(request, client, service)
    values["gallery"] = await portal.os_gallery(get_ctx(request), service)
    values["overview"] = await portal.overview(get_ctx(request), service)
    return render(request, "portal/rebuild.html", values)


# --- actions -------------------------------------------------------------------------------------


@router.post("/s/{service_id}/power")
async def power(
    request: Request, client: Client, service_id: int, action: Annotated[str, Form()]
) -> Response:
    ctx = get_ctx(request)
    service = await owned(request, client, service_id)
    _need(service, Capability.POWER)
    chosen = POWER_ACTIONS.get(action)
    if chosen is None:
        raise UiError(422, "Unknown power action.", code="invalid")
    await _limit(ctx, "power", service)
    await portal.power(ctx, service, chosen, portal.client_actor(service, client_ip(request)))
    if wants_json(request):
        return JSONResponse({"ok": True, "action": chosen})
    return _back(service_id, "power", "#power")


@router.post("/s/{service_id}/rename")
async def rename(
    request: Request,
    client: Client,
    service_id: int,
    hostname: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
) -> Response:
    ctx = get_ctx(request)
    service = await owned(request, client, service_id)
    _need(service, Capability.RENAME)
    await _limit(ctx, "rename", service)
    await portal.rename(ctx, service, hostname, name, portal.client_actor(service, client_ip(request)))
    return _back(service_id, "rename", "#settings")


@router.post("/s/{service_id}/password")
async def reset_password(request: Request, client: Client, service_id: int) -> Response:
    ctx = get_ctx(request)
    service = await owned(request, client, service_id)
    _need(service, Capability.RESET_PASSWORD)
    await _limit(ctx, "password", service)
    username, password = await portal.reset_password(
        ctx, service, portal.client_actor(service, client_ip(request))
    )
    values = await _page_context(request, client, service)
    values.update(username=username, password=password)
    return render(request, "portal/password.html", values)


@router.post("/s/{service_id}/rebuild")
async def rebuild(
    request: Request,
    client: Client,
    service_id: int,
    os: Annotated[str, Form()],
    confirm: Annotated[str, Form()] = "",
    ssh_key: Annotated[str, Form()] = "",
) -> Response:
    ctx = get_ctx(request)
    service = await owned(request, client, service_id)
    _need(service, Capability.BUILD)
    expected = service.hostname or str(service.id)
    if confirm.strip() != expected:
        raise UiError(422, "Type the server's host name to confirm the reinstall.", code="confirm_mismatch")
    await _limit(ctx, "rebuild", service)
    keys = [line for line in ssh_key.splitlines() if line.strip()]
    await portal.rebuild(ctx, service, os, keys, portal.client_actor(service, client_ip(request)))
    return _back(service_id, "rebuild")


@router.post("/s/{service_id}/rdns")
async def set_rdns(
    request: Request,
    client: Client,
    service_id: int,
    ip: Annotated[str, Form()],
    ptr: Annotated[str, Form()] = "",
) -> Response:
    from vpsbridge.services.dns.client import set_client_ptr

    ctx = get_ctx(request)
    service = await owned(request, client, service_id)
    assert service.server_id is not None
    await _limit(ctx, "rdns", service)
    result = await set_client_ptr(
        ctx, service.server_id, ip, ptr, portal.client_actor(service, client_ip(request))
    )
    if wants_json(request):
        return JSONResponse(result.as_dict())
    return _back(service_id, "rdns", "#rdns")


@router.post("/s/{service_id}/console")
async def console(request: Request, client: Client, service_id: int) -> Response:
    """The console popup: a fresh upstream console per open, only a single-use relay ticket in the page."""
    ctx = get_ctx(request)
    service = await owned(request, client, service_id)
    _need(service, Capability.CONSOLE)
    await _limit(ctx, "console", service)
    relay, ticket = await portal.open_console(ctx, service, portal.client_actor(service, client_ip(request)))
    scheme = "wss" if request.url.scheme == "https" else "ws"
    ws_url = f"{scheme}://{request.url.netloc}/portal/console/ws?ticket={relay}"
    response = render(
        request,
        "portal/console.html",
        {"service": service, "ws_url": ws_url, "expires_at": ticket.expires_at},
        connect_src=(f"{scheme}://{request.url.netloc}",),
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/s/{service_id}/panel-login")
async def panel_login(request: Request, client: Client, service_id: int) -> Response:
    """Sign the client in to the platform's own panel: a 303 to a one-time URL on the panel host.

    Only platforms whose driver offers panel sign-in (VirtFusion) have this action; the driver refuses
    a login URL on any host but the configured panel, so this never redirects elsewhere.
    """
    ctx = get_ctx(request)
    service = await owned(request, client, service_id)
    if not portal.has_panel_login(service.platform_type):
        raise UiError(404, "This feature is not available for this server.", code="not_supported")
    await _limit(ctx, "panel_login", service)
    url = await portal.panel_login(ctx, service, portal.client_actor(service, client_ip(request)))
    return RedirectResponse(
        url, status_code=303, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


@router.post("/s/{service_id}/billing/credit")
async def add_credit(
    request: Request,
    client: Client,
    service_id: int,
    amount: Annotated[str, Form()] = "",
    request_key: Annotated[str, Form(alias="request")] = "",
) -> Response:
    """Ask for credit: a WHMCS invoice to pay (credited once paid), never credit straight away.

    htmx re-renders the panel with the invoice and its payment link, or with the problem and the
    amount still typed in; JSON callers get the invoice or the error envelope; a plain form gets a
    page with the payment link.
    """
    ctx = get_ctx(request)
    service = await owned(request, client, service_id)
    _billing_service(service)
    htmx = request.headers.get("hx-request") == "true"
    bounds = portal_billing.credit_bounds(service)
    try:
        await _limit(ctx, "credit", service)
        issued = await portal_billing.request_credit(
            ctx, service, amount, portal.client_actor(service, client_ip(request)), request_key=request_key
        )
    except (ServiceError, UiError) as exc:
        known = CREDIT_PROBLEMS.get(exc.code)
        if htmx and (known or exc.code == "rate_limited"):
            message = known[1] if known else exc.message
            values = exc.values if isinstance(exc, UiError) else {}
            return await _billing_fragment(
                request,
                service,
                problem=message,
                problem_code=exc.code,
                problem_values=values or None,
                amount=amount[:10],
            )
        if known and not isinstance(exc, UiError):
            values = {"min": f"{bounds.minimum:.2f}", "max": f"{bounds.maximum:.2f}"}
            raise UiError(known[0], known[1], code=exc.code, values=values, details=exc.details) from exc
        raise
    if wants_json(request):
        return JSONResponse(
            {
                "ok": True,
                "invoice_id": issued.invoice_id,
                "amount": issued.amount,
                "status": issued.status,
                "pay_url": issued.pay_url,
            },
            headers={"Cache-Control": "no-store"},
        )
    if htmx:
        return await _billing_fragment(request, service, issued=issued)
    values = await _page_context(request, client, service)
    values["issued"] = issued
    return render(request, "portal/credit_requested.html", values, headers={"Cache-Control": "no-store"})


@router.websocket("/console/ws")
async def console_ws(websocket: WebSocket, ticket: str = "") -> None:
    await relay_console(websocket, ticket)
