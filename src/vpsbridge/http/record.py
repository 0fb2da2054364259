"""The upstream request log record and the recorder protocol that receives it.

The HTTP layer does not know where records go: the web/worker processes hand clients a recorder that
queues them for the database (:mod:`vpsbridge.services.upstream_log`), tests hand a list's ``append``.
Records are already redacted and truncated when a recorder sees them, so no recorder can leak.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from vpsbridge.http.errors import OutcomeName


@dataclass(frozen=True, slots=True)
class UpstreamRecord:
    """One HTTP attempt against an upstream API (a retried request produces one record per attempt)."""

    ts: dt.datetime
    client: str
    method: str
    url: str
    status: int | None
    duration_ms: float
    outcome: OutcomeName
    request_body: str | None
    response_body: str | None
    error: str | None
    job_id: int | None
    attempt: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Recorder(Protocol):
    """Receives every record. Must not block: it is called on the request's hot path."""

    def __call__(self, record: UpstreamRecord, /) -> None: ...
