"""Errors raised by application services.

Every service failure an operator can cause or fix is a :class:`ServiceError` whose ``str()`` is a
sentence meant for that operator. The outer ring translates them without knowing any service: the
web layer uses :attr:`ServiceError.http_status` and :attr:`ServiceError.code` for its JSON error
envelope, the CLI prints the message and exits 1. Anything that is not a ``ServiceError`` is a bug.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base class: a stable machine ``code`` plus an operator-readable message."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """The shape of the ``error`` member of a JSON error envelope."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class NotFound(ServiceError):
    """The object named by the caller does not exist."""

    code = "not_found"
    http_status = 404


class Conflict(ServiceError):
    """The request clashes with the current state (duplicate name, object still in use, ...)."""

    code = "conflict"
    http_status = 409


class Invalid(ServiceError):
    """Input is unacceptable; ``field`` names the offending input field when there is one."""

    code = "invalid"
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message, details=details)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.field is not None:
            body["field"] = self.field
        return body


class UpstreamError(ServiceError):
    """A platform or DNS provider failed or could not be reached; the message says which and why."""

    code = "upstream_error"
    http_status = 502
