"""Typed upstream errors: every failure of an upstream call is one of four kinds.

The split follows the tri-state rule of the architecture. A caller must be able to tell a *confirmed*
absence (:class:`UpstreamNotFound`, safe to act on, e.g. release an IP) from *not knowing*
(:class:`UpstreamUnavailable`: timeouts, refused connections, 5xx, garbage bodies), which must never
drive a destructive decision. :class:`UpstreamRejected` and :class:`UpstreamAuthError` are definite
answers that are not a value either: the request itself or our credentials are wrong, so retrying
will not help but an operator can fix it.
"""

from __future__ import annotations

from typing import Literal

#: What happened to one upstream request, as recorded in logs, metrics and the request log.
OutcomeName = Literal["value", "missing", "rejected", "auth", "unknown"]


class UpstreamError(Exception):
    """Base class; ``str()`` is a one-line, redacted message an operator can read."""

    outcome: OutcomeName = "unknown"

    def __init__(
        self,
        message: str,
        *,
        client: str = "",
        method: str = "",
        url: str = "",
        status: int | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.client = client
        self.method = method
        self.url = url
        self.status = status
        #: The redacted, truncated response body, for the operator console.
        self.body = body


class UpstreamUnavailable(UpstreamError):
    """We do not know the answer: timeout, connection failure, 5xx, redirect or malformed body."""

    outcome: OutcomeName = "unknown"


class UpstreamTimeout(UpstreamUnavailable):
    """The upstream did not connect or answer within the configured timeout."""


class UpstreamMalformed(UpstreamUnavailable):
    """The upstream answered 2xx but the body is not what the protocol promises (e.g. bad JSON)."""


class UpstreamRateLimited(UpstreamUnavailable):
    """429 that outlived our retries; ``retry_after`` is the upstream's hint in seconds, if any."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        client: str = "",
        method: str = "",
        url: str = "",
        status: int | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message, client=client, method=method, url=url, status=status, body=body)
        self.retry_after = retry_after


class UpstreamNotFound(UpstreamError):
    """Confirmed missing: 404 (or whatever a client subclass declares as "does not exist")."""

    outcome: OutcomeName = "missing"


class UpstreamRejected(UpstreamError):
    """A definite 4xx refusal; ``message`` carries the vendor's own explanation when it gave one."""

    outcome: OutcomeName = "rejected"


class UpstreamAuthError(UpstreamRejected):
    """401/403: the credentials are wrong or lack a permission (the message names it if the vendor does)."""

    outcome: OutcomeName = "auth"
