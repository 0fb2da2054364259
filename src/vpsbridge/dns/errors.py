"""Typed DNS errors with messages an operator can act on.

They subclass the HTTP layer's tri-state errors, so :func:`vpsbridge.http.tri_state` and every caller
that already distinguishes "confirmed missing" from "unknown" treat DNS failures correctly: a zone the
server says does not exist is :class:`DnsZoneNotFound` (missing), a refused record is
:class:`DnsRecordRejected` (rejected), a timeout is :class:`DnsUnavailable` (unknown, never acted on).
"""

from __future__ import annotations

from typing import Any

from vpsbridge.http.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)


class DnsError(UpstreamError):
    """Base of all DNS provider errors; ``provider`` and ``zone`` say where it happened."""

    def __init__(self, message: str, *, provider: str = "", zone: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.provider = provider
        self.zone = zone


class DnsConfigError(DnsError, UpstreamRejected):
    """The provider's settings are incomplete or wrong (missing key, unknown server id...)."""


class DnsAuthFailed(DnsError, UpstreamAuthError):
    """The server refused our credentials; the message carries a checklist."""


class DnsUnsupported(DnsError, UpstreamRejected):
    """The provider cannot do this at all (classless zone on Cloudflare, a record type...)."""


class DnsZoneNotFound(DnsError, UpstreamNotFound):
    """The server confirmed that the zone does not exist there."""


class DnsRecordRejected(DnsError, UpstreamRejected):
    """The server refused a record (bad format, out of zone, conflicts with a CNAME...)."""


class DnsUnavailable(DnsError, UpstreamUnavailable):
    """We do not know what happened: timeout, connection refused, 5xx, malformed answer."""


class DnsRateLimited(DnsError, UpstreamRateLimited):
    """Too many requests; ``retry_after`` seconds is the server's hint."""


def translate(exc: UpstreamError, *, provider: str, zone: str | None = None, hint: str = "") -> DnsError:
    """Map an HTTP-layer error onto the DNS hierarchy, keeping status/url/body for the console."""
    if isinstance(exc, DnsError):
        return exc
    message = f"{exc.message}{' - ' + hint if hint else ''}"
    kwargs: dict[str, Any] = {
        "provider": provider,
        "zone": zone,
        "client": exc.client,
        "method": exc.method,
        "url": exc.url,
        "status": exc.status,
        "body": exc.body,
    }
    if isinstance(exc, UpstreamRateLimited):
        return DnsRateLimited(message, retry_after=exc.retry_after, **kwargs)
    if isinstance(exc, UpstreamAuthError):
        return DnsAuthFailed(message, **kwargs)
    if isinstance(exc, UpstreamNotFound):
        return DnsZoneNotFound(message, **kwargs)
    if isinstance(exc, UpstreamRejected):
        return DnsRecordRejected(message, **kwargs)
    return DnsUnavailable(message, **kwargs)
