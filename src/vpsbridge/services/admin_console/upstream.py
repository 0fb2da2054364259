"""Searching the upstream request log for the operator console.

:func:`vpsbridge.services.upstream_log.recent` answers "the newest N, maybe for one client"; the
console also needs free-text search (URL, error), method, outcome and status filters and paging, so
the query lives here, over the same table and returning the same :class:`LoggedRequest`. Bodies were
redacted when recorded; they are scrubbed again on the way out so a secret registered since (a newly
added platform token) is not shown either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select

from vpsbridge.logs import scrub
from vpsbridge.services.upstream_log import EXTRAS_LOG, LoggedRequest, UpstreamLog
from vpsbridge.store.models import UpstreamRequest

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

OUTCOMES = ("value", "missing", "unknown")


@dataclass(frozen=True)
class UpstreamQuery:
    """Filters of the request log page; every field is optional and they combine with AND."""

    q: str | None = None
    client: str | None = None
    method: str | None = None
    outcome: str | None = None
    status: int | None = None
    job_id: int | None = None
    #: Paging: only rows with a smaller id (the last id of the previous page).
    before_id: int | None = None
    limit: int = 100


def _logged(r: UpstreamRequest) -> LoggedRequest:
    return LoggedRequest(
        id=r.id,
        ts=r.ts,
        client=r.client,
        method=r.method,
        url=scrub(r.url),
        status=r.status,
        duration_ms=r.duration_ms,
        outcome=r.outcome,
        request_body=scrub(r.request_body) if r.request_body else r.request_body,
        response_body=scrub(r.response_body) if r.response_body else r.response_body,
        error=scrub(r.error) if r.error else r.error,
        job_id=r.job_id,
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


async def search_upstream(ctx: AppContext, query: UpstreamQuery) -> list[LoggedRequest]:
    """Newest first; ``q`` matches the URL, the client name or the error text (case-insensitive)."""
    pending = ctx.extras.get(EXTRAS_LOG)
    if isinstance(pending, UpstreamLog):
        await pending.flush()  # what this process just sent should be visible at once
    stmt = select(UpstreamRequest).order_by(UpstreamRequest.id.desc())
    if query.q:
        pattern = _like(query.q.strip())
        stmt = stmt.where(
            or_(
                func.lower(UpstreamRequest.url).like(pattern, escape="\\"),
                func.lower(UpstreamRequest.client).like(pattern, escape="\\"),
                func.lower(func.coalesce(UpstreamRequest.error, "")).like(pattern, escape="\\"),
            )
        )
    if query.client:
        stmt = stmt.where(UpstreamRequest.client == query.client)
    if query.method:
        stmt = stmt.where(UpstreamRequest.method == query.method.upper())
    if query.outcome:
        stmt = stmt.where(UpstreamRequest.outcome == query.outcome)
    if query.status is not None:
        stmt = stmt.where(UpstreamRequest.status == query.status)
    if query.job_id is not None:
        stmt = stmt.where(UpstreamRequest.job_id == query.job_id)
    if query.before_id is not None:
        stmt = stmt.where(UpstreamRequest.id < query.before_id)
    async with ctx.db.session() as session:
        rows = (await session.scalars(stmt.limit(max(1, min(query.limit, 500))))).all()
    return [_logged(r) for r in rows]


async def get_upstream(ctx: AppContext, request_id: int) -> LoggedRequest | None:
    """One stored request (the detail view with bodies)."""
    async with ctx.db.session() as session:
        row = await session.get(UpstreamRequest, request_id)
        return None if row is None else _logged(row)


async def upstream_clients(ctx: AppContext) -> list[str]:
    async with ctx.db.session() as session:
        return sorted((await session.scalars(select(UpstreamRequest.client).distinct())).all())
