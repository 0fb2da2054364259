"""Session cookies and the sign-in guard of the portal and the operator console.

The cookie holds a random value whose hash keys the ``sessions`` row (see
:mod:`vpsbridge.services.web_sessions`). It is ``HttpOnly`` (scripts cannot read it), ``SameSite=Lax``
(not sent on cross-site POSTs) and ``Secure`` unless ``secure_cookies`` is off for plain-HTTP
development; with ``Secure`` it also takes the ``__Host-`` prefix, which pins it to this exact host
and path ``/``. Every sign-in creates a new session (no fixation), and the portal and the console use
different cookies so one cannot stand in for the other.

:func:`session_guard` builds the FastAPI dependency each area puts on its routes: it loads the
session (401 when missing), and for anything but GET/HEAD also requires a same-origin request and the
session's CSRF token. The loaded session is left on ``request.state.ui_session`` for the templates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response

from vpsbridge.config import Settings
from vpsbridge.services import web_sessions
from vpsbridge.services.web_sessions import DEFAULT_SESSION_TTL, SessionView
from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui.errors import UiError
from vpsbridge.web.ui.i18n import N_
from vpsbridge.web.ui.security import require_csrf, require_same_origin

SIGNED_OUT = N_("Your session has ended; sign in again.")


def cookie_name(kind: str, settings: Settings) -> str:
    """``__Host-vpsb_<kind>`` with Secure cookies, ``vpsb_<kind>`` on plain-HTTP development setups."""
    return f"__Host-vpsb_{kind}" if settings.secure_cookies else f"vpsb_{kind}"


def set_session_cookie(
    response: Response, settings: Settings, kind: str, value: str, *, ttl: dt.timedelta = DEFAULT_SESSION_TTL
) -> None:
    response.set_cookie(
        cookie_name(kind, settings),
        value,
        max_age=int(ttl.total_seconds()),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings, kind: str) -> None:
    response.delete_cookie(
        cookie_name(kind, settings), path="/", secure=settings.secure_cookies, httponly=True, samesite="lax"
    )


async def start_session(
    request: Request,
    response: Response,
    kind: str,
    subject: str,
    data: dict[str, Any] | None = None,
    *,
    ttl: dt.timedelta = DEFAULT_SESSION_TTL,
) -> SessionView:
    """Sign a browser in: end the session it had in this area, create a new one, set the cookie."""
    ctx = get_ctx(request)
    settings: Settings = request.app.state.settings
    old = request.cookies.get(cookie_name(kind, settings))
    if old:
        previous = await web_sessions.load_session(ctx, kind, old, ttl=ttl)
        if previous is not None:
            await web_sessions.destroy_session(ctx, previous.id)
    cookie, session = await web_sessions.create_session(ctx, kind, subject, data, ttl=ttl)
    set_session_cookie(response, settings, kind, cookie, ttl=ttl)
    request.state.ui_session = session
    return session


async def end_session(request: Request, response: Response, kind: str) -> None:
    """Sign out: delete the row and the cookie."""
    session = await current_session(request, kind)
    if session is not None:
        await web_sessions.destroy_session(get_ctx(request), session.id)
    clear_session_cookie(response, request.app.state.settings, kind)


async def current_session(
    request: Request, kind: str, *, ttl: dt.timedelta = DEFAULT_SESSION_TTL
) -> SessionView | None:
    """The signed-in session of area ``kind`` for this request, or ``None`` (memoised per request)."""
    cached = getattr(request.state, "ui_session", None)
    if isinstance(cached, SessionView) and cached.kind == kind:
        return cached
    settings: Settings = request.app.state.settings
    session = await web_sessions.load_session(
        get_ctx(request), kind, request.cookies.get(cookie_name(kind, settings)), ttl=ttl
    )
    if session is not None:
        request.state.ui_session = session
    return session


def session_guard(
    kind: str,
    *,
    sign_in_hint: str = SIGNED_OUT,
    ttl: dt.timedelta = DEFAULT_SESSION_TTL,
) -> Callable[[Request], Awaitable[SessionView]]:
    """A dependency: the signed-in session of ``kind``; same-origin + CSRF enforced on POST etc.

    Order matters: the origin check runs first (a cross-site request is refused even with a session
    cookie the browser attached), then the session, then its CSRF token.
    """

    async def guard(request: Request) -> SessionView:
        require_same_origin(request)
        session = await current_session(request, kind, ttl=ttl)
        if session is None:
            raise UiError(401, sign_in_hint, code="signed_out")
        await require_csrf(request, session.csrf_token)
        return session

    guard.__name__ = f"{kind}_session_guard"
    return guard
