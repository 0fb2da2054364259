"""Typed platform errors, built on the upstream tri-state so ``tri_state()`` classifies them.

A driver without HTTP (the in-memory one) raises the same classes a real driver's HTTP layer would,
so workflows handle "missing", "rejected" and "unknown" identically on every platform.
"""

from __future__ import annotations

from vpsbridge.http.errors import UpstreamNotFound, UpstreamRejected, UpstreamUnavailable


class PlatformError(Exception):
    """Marker base of every error raised by a platform driver itself (not by its HTTP client)."""


class NotSupported(PlatformError):
    """The driver cannot do this (the capability is not in its ``SUPPORTS``)."""


class ServerMissing(PlatformError, UpstreamNotFound):
    """Confirmed: the platform has no such server."""


class InvalidRequest(PlatformError, UpstreamRejected):
    """The platform refused the request as given (bad spec, wrong state for the action ...)."""


class InsufficientCapacity(PlatformError, UpstreamRejected):
    """No node in the placement can fit the requested resources."""


class ServerLocked(PlatformError, UpstreamUnavailable):
    """Another task holds the server; try again later (an unknown, not a refusal)."""
