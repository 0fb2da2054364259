"""One JSON error envelope for every failure the web app answers.

Every error body looks like ``{"error": {"code", "message", "details", "request_id"}}`` so API
clients, the operator console's JavaScript and the PHP bridge all parse failures the same way, and an
operator can grep the logs for the ``request_id`` a user reports. Unexpected exceptions become a bare
500 whose body names nothing internal; the traceback goes to the log only (see ``middleware``).
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from vpsbridge.logs import get_logger, request_id_var
from vpsbridge.services.errors import ServiceError

log = get_logger(__name__)

#: Machine-readable codes for plain HTTP statuses (clients switch on ``code``, not on the message).
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    502: "upstream_error",
    503: "unavailable",
    504: "upstream_timeout",
}


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_found, insufficient_scope.")
    message: str = Field(description="A sentence for the operator.")
    details: Any = Field(default=None, description="Structured extras (validation: a list of fields).")
    request_id: str | None = Field(default=None, description="Also in the X-Request-ID header and logs.")


class ErrorEnvelope(BaseModel):
    """The body of every error answer (documented in the OpenAPI schema)."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries declaring the envelope for ``statuses``."""
    return {status: {"model": ErrorEnvelope, "description": _reason(status)} for status in statuses}


def code_for_status(status: int) -> str:
    return STATUS_CODES.get(status, "error" if status >= 500 else "client_error")


def error_body(code: str, message: str, details: Any = None, request_id: str | None = None) -> dict[str, Any]:
    """The envelope as a dict; the request id defaults to the one being served."""
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": request_id if request_id is not None else request_id_var.get(),
        }
    }


def error_response(
    status: int,
    code: str | None = None,
    message: str | None = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A ready JSON response carrying the envelope (used by handlers, dependencies and middleware)."""
    text = message if message is not None else _reason(status)
    return JSONResponse(
        error_body(code or code_for_status(status), text, details),
        status_code=status,
        headers=headers,
    )


class APIError(StarletteHTTPException):
    """An HTTP error with an explicit envelope code and details, raised by routers and dependencies."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code or code_for_status(status_code)
        self.details = details


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI validation errors as ``[{"field": "body.name", "message", "type"}]``."""
    out: list[dict[str, Any]] = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        out.append({"field": ".".join(loc), "message": str(err.get("msg", "")), "type": err.get("type")})
    return out


async def _http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    if isinstance(exc, APIError):
        return error_response(exc.status_code, exc.code, str(exc.detail), exc.details, headers)
    message = exc.detail if isinstance(exc.detail, str) else _reason(exc.status_code)
    details = None if isinstance(exc.detail, str) else exc.detail
    return error_response(exc.status_code, None, message, details, headers)


async def _validation_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = validation_details(exc.errors())
    fields = ", ".join(d["field"] for d in details)
    return error_response(422, "validation_error", f"Invalid request: {fields}", details)


async def _service_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    body = exc.to_dict()
    details: Any = body.get("details")
    field = body.get("field")
    if field is not None:
        details = {**(details or {}), "field": field}
    if exc.http_status >= 500:
        log.warning("service_error", error_type=type(exc).__name__, error=exc.message)
    return error_response(exc.http_status, exc.code, exc.message, details)


def install_error_handlers(app: FastAPI) -> None:
    """Register the envelope handlers for HTTP, validation and service errors.

    Unexpected exceptions are answered by the request middleware, which runs inside Starlette's
    outermost error middleware and so can still add the request id and security headers.
    """
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_exception)
    app.add_exception_handler(ServiceError, _service_exception)
