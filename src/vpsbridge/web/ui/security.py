"""Browser-facing protections shared by the portal and the operator console.

* **CSP with nonces** - every page gets a fresh nonce; scripts run only from our origin or with that
  nonce, styles only from our origin (no inline ``style=`` anywhere in our templates), nothing may
  frame us, forms post only to us.
* **Same-origin check** - a state-changing request must come from one of our own pages: when the
  browser sends ``Sec-Fetch-Site`` it must be ``same-origin``, and when it sends ``Origin`` it must
  be ours. Modern browsers send both on every POST, so a cross-site form or ``fetch`` is refused even
  before the CSRF token is looked at.
* **CSRF token** - the session's token, posted as the ``csrf_token`` field or the ``X-CSRF-Token``
  header (htmx and ``fetch`` send the header, see ``ui.js``), compared in constant time.
* **Rate limits** - per action and subject, atomic in the shared cache (``ctx.cache.hit``), answered
  with 429 and ``Retry-After``.
"""

from __future__ import annotations

import hmac
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from starlette.requests import HTTPConnection

from vpsbridge.services.context import AppContext
from vpsbridge.web.ui.errors import UiError
from vpsbridge.web.ui.i18n import N_

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_SITE = N_("Request refused: it was sent from another site.")
CROSS_ORIGIN = N_("Request refused: its origin does not match this site.")


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def page_csp(
    nonce: str,
    *,
    connect_src: tuple[str, ...] = (),
    img_src: tuple[str, ...] = (),
    frame_ancestors: str = "'none'",
    form_action: tuple[str, ...] = (),
) -> str:
    """The Content-Security-Policy of an HTML page.

    ``connect_src`` adds origins the page may open (the console's websocket); ``frame_ancestors``
    lets the WHMCS client area embed panels (``'self'`` when the bridge proxies them same-origin).
    ``form_action`` adds origins a form's answer may redirect to (browsers check redirects of a form
    submission against ``form-action``; the panel sign-in redirects to the platform's panel).
    """
    forms = " ".join(("'self'", *form_action))
    connect = " ".join(("'self'", *connect_src))
    images = " ".join(("'self'", "data:", *img_src))
    return (
        "default-src 'none'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self'; "
        f"img-src {images}; "
        "font-src 'self'; "
        f"connect-src {connect}; "
        "manifest-src 'self'; "
        f"frame-ancestors {frame_ancestors}; "
        f"base-uri 'none'; form-action {forms}; object-src 'none'"
    )


#: A websocket handshake arrives as ws/wss; the page that opened it has the matching http(s) origin.
_PAGE_SCHEME = {"ws": "http", "wss": "https"}


def own_origins(request: HTTPConnection, public_url: str | None) -> set[str]:
    """The origins our pages are served from: the request's own host and the configured public URL.

    Works for websocket handshakes too (the console relay), whose own scheme is ``ws``/``wss``.
    """
    scheme = _PAGE_SCHEME.get(request.url.scheme, request.url.scheme)
    origins = {f"{scheme}://{request.url.netloc}".lower()}
    if public_url:
        parts = urlsplit(public_url)
        if parts.scheme and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}".lower())
    return origins


def same_origin_problem(headers: Mapping[str, str], origins: set[str]) -> str | None:
    """Why a state-changing request is not same-origin, or ``None`` when it is acceptable."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() != "same-origin":
        return CROSS_SITE
    origin = headers.get("origin")
    # A form navigation from a page with a strict referrer policy sends ``Origin: null``; the browser's
    # own Sec-Fetch-Site (checked above) still proves it came from this site.
    if origin == "null" and fetch_site is not None:
        return None
    if origin is not None and origin.lower().rstrip("/") not in origins:
        return CROSS_ORIGIN
    return None


def require_same_origin(request: Request) -> None:
    """Raise 403 unless the request came from one of our own pages (no-op for GET/HEAD)."""
    if request.method in SAFE_METHODS:
        return
    settings = request.app.state.settings
    problem = same_origin_problem(request.headers, own_origins(request, settings.public_url))
    if problem is not None:
        raise UiError(403, problem, code="cross_origin")


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


async def posted_csrf_token(request: Request) -> str | None:
    """The token the browser sent: header first (htmx, fetch), else the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches the parsed form for the endpoint
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def require_csrf(request: Request, expected: str) -> None:
    """Raise 403 unless a state-changing request carries the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    if not tokens_match(expected, await posted_csrf_token(request)):
        raise UiError(
            403,
            "The form expired or did not come from this site; reload the page and try again.",
            code="csrf_failed",
        )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``limit`` actions per ``window`` seconds (the issue's limits are one action per window)."""

    limit: int
    window: float


async def enforce_rate_limit(ctx: AppContext, action: str, subject: str, rule: RateLimit) -> None:
    """Count one ``action`` by ``subject``; raise 429 with ``Retry-After`` when over the limit."""
    decision = await ctx.cache.hit(f"ui:rl:{action}:{subject}", rule.limit, rule.window)
    if not decision.allowed:
        wait = max(1, math.ceil(decision.retry_after))
        raise UiError(
            429,
            "Too many requests; try again in %(seconds)s s.",
            code="rate_limited",
            values={"seconds": wait},
            headers={"Retry-After": str(wait)},
            details={"retry_after": wait},
        )
