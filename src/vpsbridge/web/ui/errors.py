"""Errors of browser pages, answered as HTML instead of the API's JSON envelope.

Routers of the portal and the console use :class:`UiRoute` as their ``route_class``. It catches
:class:`UiError`, service errors and HTTP exceptions raised while handling a page and renders the
shared error page (or, for htmx requests, a small fragment the page shows in place), keeping the
status code and headers such as ``Retry-After``. The API's JSON handlers are untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from vpsbridge.services.errors import ServiceError


class UiError(Exception):
    """A failure to show a person: status, a sentence, an optional code, headers and details."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
        action: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or "error"
        self.headers = dict(headers or {})
        self.details = dict(details or {})
        #: What the person can do about it (shown under the message).
        self.action = action
        #: ``%(name)s`` placeholders of ``message``, filled after translation.
        self.values = dict(values or {})


def as_ui_error(exc: Exception) -> UiError | None:
    """Map an exception raised by a page handler onto a :class:`UiError` (``None``: not ours)."""
    if isinstance(exc, UiError):
        return exc
    if isinstance(exc, ServiceError):
        return UiError(exc.http_status, exc.message, code=exc.code, details=exc.details)
    if isinstance(exc, StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        return UiError(exc.status_code, message, headers=dict(exc.headers or {}))
    return None


ErrorRenderer = Callable[[Request, UiError], Awaitable[Response]]


class UiRoute(APIRoute):
    """An ``APIRoute`` whose failures are rendered as HTML by the app's UI error renderer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                error = as_ui_error(exc)
                if error is None:
                    raise
                from vpsbridge.web.ui.templating import render_error

                return await render_error(request, error)

        return wrapped
