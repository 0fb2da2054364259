"""The shared upstream HTTP layer: one client base class, tri-state errors, redaction, request log.

Platform drivers and DNS providers import from here (and from ``vpsbridge.core``) only.
"""

from vpsbridge.http.client import IDEMPOTENT_METHODS, RETRY_STATUSES, UpstreamClient, parse_retry_after
from vpsbridge.http.context import bind_job_id, current_job_id
from vpsbridge.http.errors import (
    OutcomeName,
    UpstreamAuthError,
    UpstreamError,
    UpstreamMalformed,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from vpsbridge.http.outcome import Found, Missing, Outcome, Unknown, tri_state
from vpsbridge.http.record import Recorder, UpstreamRecord
from vpsbridge.http.response import UpstreamResponse

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "Found",
    "Missing",
    "Outcome",
    "OutcomeName",
    "Recorder",
    "Unknown",
    "UpstreamAuthError",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamMalformed",
    "UpstreamNotFound",
    "UpstreamRateLimited",
    "UpstreamRecord",
    "UpstreamRejected",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "bind_job_id",
    "current_job_id",
    "parse_retry_after",
    "tri_state",
]
