"""Signing in to the operator console: password (+ TOTP), WHMCS single sign-on, signing out, and
the operator's own two-factor set-up.

The sign-in form is posted before any session exists, so it cannot carry a session's CSRF token;
it carries a *login* token instead, double-submitted as a cookie and a form field (a cross-site form
can send the cookie but cannot read it to fill the field), on top of the same-origin check every
POST passes.
"""

from __future__ import annotations

import math
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vpsbridge.config import Settings
from vpsbridge.services import admin_auth
from vpsbridge.services.admin_auth import TooManyAttempts
from vpsbridge.web.admin.deps import KIND, PREFIX, Signed, flash_of, safe_next, see_other
from vpsbridge.web.admin.wording import AdminRoute
from vpsbridge.web.deps import client_ip, get_ctx
from vpsbridge.web.ui import (
    UiError,
    _,
    current_session,
    end_session,
    render,
    require_same_origin,
    start_session,
)
from vpsbridge.web.ui.i18n import N_
from vpsbridge.web.ui.security import tokens_match

router = APIRouter(route_class=AdminRoute, include_in_schema=False)

LOGIN_CSRF_FIELD = "login_token"
#: The account service's refusals of a two-factor code, worded there (:mod:`vpsbridge.services.admin_auth`)
#: and shown on the error page, which looks every message up in the catalogue: listed here so the
#: console's catalogue holds them.
TOTP_REFUSALS = (
    N_("this set-up form has expired; start two-factor set-up again"),
    N_("that code does not match; check the time on your device and try again"),
    N_("that code does not match"),
)


def _login_cookie(settings: Settings) -> str:
    return "__Host-vpsb_admin_login" if settings.secure_cookies else "vpsb_admin_login"


def _login_form(
    request: Request,
    *,
    error: str | None = None,
    status: int = 200,
    ticket: str | None = None,
    next_path: str | None = None,
) -> Response:
    settings: Settings = request.app.state.settings
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "admin/login.html",
        {
            "error": error,
            "login_token": token,
            "ticket": ticket,
            "next": safe_next(next_path if next_path is not None else request.query_params.get("next")),
        },
        status=status,
    )
    response.set_cookie(
        _login_cookie(settings),
        token,
        max_age=900,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


async def _check_login_post(request: Request) -> dict[str, str]:
    require_same_origin(request)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    expected = request.cookies.get(_login_cookie(request.app.state.settings))
    if not expected or not tokens_match(expected, values.get(LOGIN_CSRF_FIELD)):
        raise UiError(
            403,
            "The form expired or did not come from this site; reload the page and try again.",
            code="csrf_failed",
        )
    return values


def _too_many(exc: TooManyAttempts) -> UiError:
    wait = max(1, math.ceil(exc.retry_after))
    return UiError(
        429,
        "Too many sign-in attempts; try again in %(seconds)s s.",
        code="rate_limited",
        values={"seconds": wait},
        headers={"Retry-After": str(wait)},
    )


async def _signed_in_response(request: Request, admin_id: int, next_path: str) -> Response:
    response = see_other(safe_next(next_path))
    await start_session(request, response, KIND, str(admin_id))
    response.delete_cookie(_login_cookie(request.app.state.settings), path="/")
    return response


@router.get("/login")
async def login_page(request: Request) -> Response:
    if await current_session(request, KIND) is not None:
        return see_other(safe_next(request.query_params.get("next")))
    return _login_form(request)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    values = await _check_login_post(request)
    ctx = get_ctx(request)
    try:
        outcome = await admin_auth.password_step(
            ctx, values.get("username", ""), values.get("password", ""), ip=client_ip(request)
        )
    except TooManyAttempts as exc:
        raise _too_many(exc) from None
    next_path = values.get("next", "")
    if outcome.ticket is not None:
        return _login_form(request, ticket=outcome.ticket, next_path=next_path)
    if outcome.admin is None:
        return _login_form(
            request, error=_(request, "Wrong username or password."), status=401, next_path=next_path
        )
    return await _signed_in_response(request, outcome.admin.id, next_path)


@router.post("/login/totp")
async def login_totp(request: Request) -> Response:
    values = await _check_login_post(request)
    ctx = get_ctx(request)
    ticket = values.get("ticket", "")
    try:
        admin = await admin_auth.totp_step_login(ctx, ticket, values.get("code", ""), ip=client_ip(request))
    except TooManyAttempts as exc:
        raise _too_many(exc) from None
    if admin is None:
        return _login_form(
            request,
            error=_(request, "That code is not valid (or was already used); enter the current one."),
            status=401,
            ticket=ticket,
            next_path=values.get("next", ""),
        )
    return await _signed_in_response(request, admin.id, values.get("next", ""))


@router.get("/sso")
async def sso(request: Request) -> Response:
    """The landing point of the WHMCS admin area's "open vpsbridge" link (a one-time token)."""
    admin = await admin_auth.consume_admin_sso(
        get_ctx(request), request.query_params.get("token", ""), ip=client_ip(request)
    )
    if admin is None:
        raise UiError(
            403,
            "This sign-in link is invalid, expired or was already used.",
            code="sso_invalid",
            action="Open the operator console from WHMCS again, or sign in with your password.",
        )
    return await _signed_in_response(request, admin.id, f"{PREFIX}/")


@router.post("/logout")
async def logout(request: Request, operator: Signed) -> Response:
    response = see_other(f"{PREFIX}/login")
    await end_session(request, response, KIND)
    return response


@router.get("/account")
async def account(request: Request, operator: Signed) -> Response:
    message, kind = flash_of(request)
    return render(
        request,
        "admin/account.html",
        {"op": operator, "enrolment": None, "flash": message, "flash_kind": kind},
    )


@router.post("/account/totp/start")
async def totp_start(request: Request, operator: Signed) -> Response:
    enrolment = admin_auth.start_totp_enrolment(get_ctx(request), operator.admin)
    return render(
        request,
        "admin/account.html",
        {"op": operator, "enrolment": enrolment, "flash": None, "flash_kind": "info"},
    )


@router.post("/account/totp/confirm")
async def totp_confirm(request: Request, operator: Signed) -> Response:
    form = await request.form()
    await admin_auth.confirm_totp_enrolment(
        get_ctx(request),
        operator.admin.id,
        str(form.get("ticket", "")),
        str(form.get("code", "")),
        operator.actor,
    )
    return see_other(f"{PREFIX}/account", flash=_(request, "Two-factor sign-in is on."))


@router.post("/account/totp/disable")
async def totp_disable(request: Request, operator: Signed) -> Response:
    form = await request.form()
    await admin_auth.disable_totp(
        get_ctx(request), operator.admin.id, operator.actor, code=str(form.get("code", ""))
    )
    return see_other(f"{PREFIX}/account", flash=_(request, "Two-factor sign-in is off."), kind="warning")
