"""The request middleware: request ids, the access log, security headers and the last-resort 500.

It is a plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware`` so that the request id
context variable it sets is visible to the endpoint (same task) and streaming responses are not
buffered. It sits outside FastAPI's exception handling, so an exception reaching it is a bug: it is
logged with its traceback and answered with a 500 envelope that names nothing internal.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpsbridge.logs import get_logger, request_id_var
from vpsbridge.web.errors import error_response

log = get_logger("vpsbridge.access")

REQUEST_ID_HEADER = "x-request-id"
# An incoming id is kept only when it is short and plain, so it cannot forge log lines or headers.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

#: Default CSP for JSON answers; pages (docs, portal, console) set their own before this applies.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

SECURITY_HEADERS: dict[str, str] = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": API_CSP,
}

HTTP_REQUESTS = Counter(
    "vpsbridge_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "vpsbridge_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def new_request_id() -> str:
    return secrets.token_hex(12)


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            try:
                text = bytes(value).decode("ascii")
            except UnicodeDecodeError:
                return None
            return text if _SANE_REQUEST_ID.match(text) else None
    return None


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label cardinality), or ``unmatched``."""
    route: Any = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "unmatched"


class RequestContextMiddleware:
    """Binds a request id, writes one access line per request and adds security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled_error", method=scope.get("method"), path=scope.get("path"))
            if response_started:
                raise
            status = 500
            response = error_response(500, "internal_error", "Internal server error; see the server log.")
            await response(scope, receive, send_wrapper)
        finally:
            duration = time.perf_counter() - started
            method = str(scope.get("method", ""))
            route = _route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(duration)
            log.info(
                "request",
                method=method,
                path=scope.get("path"),
                status=status,
                duration_ms=round(duration * 1000, 2),
                client=(scope.get("client") or (None,))[0],
            )
            request_id_var.reset(token)
