"""What every operator console route shares: the signed-in operator, the actor, redirects, flashes.

:func:`signed_in` is the dependency on every page except sign-in. It reuses the shared UI guard
(same-origin check, session, CSRF token on anything but GET/HEAD) and then loads the operator: a
session whose account was disabled or deleted since is ended, not trusted. A browser that is not
signed in and asks for a page is sent to the sign-in form (htmx requests get ``HX-Redirect``);
anything else gets the guard's 401/403.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from vpsbridge.services import web_sessions
from vpsbridge.services.admins import admin_out
from vpsbridge.services.audit import Actor
from vpsbridge.services.schemas import AdminOut
from vpsbridge.services.web_sessions import SessionView
from vpsbridge.store.models import Admin
from vpsbridge.web.deps import client_ip, get_ctx
from vpsbridge.web.ui import UiError, current_session, require_csrf, require_same_origin
from vpsbridge.web.ui import _ as translate

KIND = "admin"
PREFIX = "/admin"
LOGIN_PATH = f"{PREFIX}/login"


@dataclass(frozen=True)
class Operator:
    """The signed-in operator of this request."""

    admin: AdminOut
    session: SessionView
    ip: str | None

    @property
    def actor(self) -> Actor:
        return Actor(type="admin", id=str(self.admin.id), ip=self.ip)


def _login_redirect(request: Request) -> UiError:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{LOGIN_PATH}?{urllib.parse.urlencode({'next': target})}"
    headers = {"Location": location}
    if request.headers.get("hx-request") == "true":
        headers = {"HX-Redirect": location}
        return UiError(401, "Your session has ended; sign in again.", code="signed_out", headers=headers)
    return UiError(303, "Sign in to continue.", code="signed_out", headers=headers)


async def signed_in(request: Request) -> Operator:
    require_same_origin(request)
    session = await current_session(request, KIND)
    if session is None:
        if request.method in ("GET", "HEAD"):
            raise _login_redirect(request)
        raise UiError(401, "Your session has ended; sign in again.", code="signed_out")
    await require_csrf(request, session.csrf_token)
    ctx = get_ctx(request)
    admin = None
    if session.subject.isdigit():
        async with ctx.db.session() as db:
            row = await db.scalar(select(Admin).where(Admin.id == int(session.subject)))
            admin = admin_out(row) if row is not None and row.is_active else None
    if admin is None:
        await web_sessions.destroy_session(ctx, session.id)
        raise _login_redirect(request)
    operator = Operator(admin=admin, session=session, ip=client_ip(request))
    request.state.operator = operator
    return operator


Signed = Annotated[Operator, Depends(signed_in)]


def safe_next(value: str | None) -> str:
    """Only a path inside the console: an open redirect would make our login a phishing tool."""
    if value and value.startswith(f"{PREFIX}/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/"


def see_other(
    location: str, *, flash: str | None = None, kind: str = "success", job: int | None = None
) -> RedirectResponse:
    """Post/redirect/get, carrying a short message in the query string (shown escaped).

    ``flash`` is already in the operator's language: the action words it with the request's ``_``
    (``_(request, "IP pool %(name)s added.", name=...)``), fields filled after translation.
    ``job`` names the job the action queued; the page links to it so the operator can follow it.
    """
    if flash:
        params: dict[str, str | int] = {"flash": flash, "flash_kind": kind}
        if job is not None:
            params["job"] = job
        sep = "&" if "?" in location else "?"
        location = f"{location}{sep}{urllib.parse.urlencode(params)}"
    return RedirectResponse(location, status_code=303)


def flash_of(request: Request) -> tuple[str | None, str]:
    """The message of a redirect (see :func:`see_other`), shown escaped.

    Actions translate their message before the redirect, because only they know its fields; the
    lookup here still translates a fixed English sentence (a bookmarked or hand-made link). The
    query string is trusted for nothing but display.
    """
    kind = request.query_params.get("flash_kind", "success")
    message = request.query_params.get("flash")
    if message:
        message = translate(request, message)
    return message, kind if kind in ("success", "error", "warning", "info") else "info"


def flash_job(request: Request) -> int | None:
    """The job a redirect's message is about (see :func:`see_other`)."""
    return int_param(request, "job")


def int_param(request: Request, name: str) -> int | None:
    """A non-negative whole number from the query string, or None (bad input is ignored, not a 500)."""
    raw = request.query_params.get(name, "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 12 else None
