"""The upstream request log: every HTTP call to VirtFusion, Proxmox, DNS providers and WHMCS,
redacted and truncated, kept in ``upstream_requests`` for the operator console.

Recording must never slow a request down or fail it, so :class:`UpstreamLog` is a synchronous
recorder that only puts the record on an in-memory queue; one writer task per process drains the
queue in batches (one INSERT per batch). If the database is down the batch is dropped with a warning
(the structlog line of each request still exists); if the queue is full new records are dropped and
counted rather than growing memory without bound. ``close()`` flushes what is queued.

Retention: rows older than ``upstream_log_retention_days`` are deleted by the periodic task
``upstream_log_purge``. ``upstream_log_retention_days = 0`` means *keep nothing*: the recorder stores
no rows at all and the purge deletes any left from before, for operators who do not want request
bodies at rest. Metrics and log lines are unaffected.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, insert, select

from vpsbridge.http.record import UpstreamRecord
from vpsbridge.http.redact import truncate
from vpsbridge.jobs.periodic import TaskLog, TaskResult, periodic_task
from vpsbridge.store.db import Database
from vpsbridge.store.models import UpstreamRequest, utcnow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

log = structlog.stdlib.get_logger("vpsbridge.upstream_log")

#: Keys in ``AppContext.extras``: the log object, and the recorder handed to drivers and clients.
EXTRAS_LOG = "upstream_log"
EXTRAS_RECORDER = "upstream_recorder"


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One stored upstream request, as the operator console and the API show it."""

    id: int
    ts: dt.datetime
    client: str
    method: str
    url: str
    status: int | None
    duration_ms: float
    outcome: str
    request_body: str | None
    response_body: str | None
    error: str | None
    job_id: int | None


class UpstreamLog:
    """A buffered recorder persisting :class:`UpstreamRecord` rows; one per process."""

    def __init__(
        self,
        db: Database,
        *,
        body_bytes: int = 4096,
        enabled: bool = True,
        batch_size: int = 200,
        max_queue: int = 10_000,
    ) -> None:
        self.db = db
        self.body_bytes = body_bytes
        self.enabled = enabled
        self.batch_size = batch_size
        self.max_queue = max_queue
        self.dropped = 0
        self.written = 0
        self._queue: asyncio.Queue[UpstreamRecord] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, db: Database, *, body_bytes: int, retention_days: int) -> UpstreamLog:
        return cls(db, body_bytes=body_bytes, enabled=retention_days > 0)

    # --- the recorder (hot path) ------------------------------------------------------------------

    def __call__(self, record: UpstreamRecord, /) -> None:
        if not self.enabled or self._closed:
            return
        try:
            queue = self._ensure_writer()
        except RuntimeError:  # no running event loop: nothing can write it
            self.dropped += 1
            return
        try:
            queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("upstream_log_queue_full", dropped=self.dropped, max_queue=self.max_queue)

    def _ensure_writer(self) -> asyncio.Queue[UpstreamRecord]:
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            # A new loop (tests, CLI runs) gets a fresh queue: queues are bound to their loop.
            self._queue = asyncio.Queue(maxsize=self.max_queue)
            self._writer = loop.create_task(self._write_forever(self._queue), name="upstream-log-writer")
        assert self._queue is not None
        return self._queue

    # --- the writer -----------------------------------------------------------------------------

    async def _write_forever(self, queue: asyncio.Queue[UpstreamRecord]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._insert(batch)
                self.written += len(batch)
            except Exception as exc:  # the database is down: keep serving, lose only this batch
                self.dropped += len(batch)
                log.warning(
                    "upstream_log_write_failed", records=len(batch), error=f"{type(exc).__name__}: {exc}"
                )
            finally:
                for _ in batch:
                    queue.task_done()

    def _row(self, record: UpstreamRecord) -> dict[str, Any]:
        def cut(text: str | None) -> str | None:
            return None if text is None else truncate(text, self.body_bytes)

        return {
            "ts": record.ts,
            "client": record.client[:50],
            "method": record.method[:10],
            "url": record.url,
            "status": record.status,
            "duration_ms": record.duration_ms,
            "outcome": record.outcome,
            "request_body": cut(record.request_body),
            "response_body": cut(record.response_body),
            "error": cut(record.error),
            "job_id": record.job_id,
        }

    async def _insert(self, batch: list[UpstreamRecord]) -> None:
        async with self.db.session() as session:
            await session.execute(insert(UpstreamRequest), [self._row(r) for r in batch])

    async def flush(self) -> None:
        """Wait until every record queued so far is written (or dropped)."""
        if self._queue is not None and self._writer is not None and not self._writer.done():
            await self._queue.join()

    async def close(self) -> None:
        """Flush and stop the writer; records arriving afterwards are ignored."""
        await self.flush()
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
            except RuntimeError:  # the writer belonged to a loop that is gone
                pass
            self._writer = None


def install_upstream_log(ctx: AppContext) -> UpstreamLog:
    """The process's upstream log, created on first use and stored in ``ctx.extras``.

    ``ctx.extras["upstream_recorder"]`` is what services pass as ``recorder=`` to drivers and clients.
    Call ``await ctx.extras["upstream_log"].close()`` before disposing of the database.
    """
    existing = ctx.extras.get(EXTRAS_LOG)
    if isinstance(existing, UpstreamLog):
        return existing
    upstream_log = UpstreamLog.from_settings(
        ctx.db,
        body_bytes=ctx.settings.upstream_log_body_bytes,
        retention_days=ctx.settings.upstream_log_retention_days,
    )
    ctx.extras[EXTRAS_LOG] = upstream_log
    ctx.extras[EXTRAS_RECORDER] = upstream_log
    return upstream_log


async def recent(
    ctx: AppContext, client: str | None = None, limit: int = 100, *, job_id: int | None = None
) -> list[LoggedRequest]:
    """The newest stored requests, optionally for one client (``virtfusion:3``) or one job."""
    pending = ctx.extras.get(EXTRAS_LOG)
    if isinstance(pending, UpstreamLog):
        await pending.flush()  # what this process just sent should be visible at once
    query = select(UpstreamRequest).order_by(UpstreamRequest.ts.desc(), UpstreamRequest.id.desc())
    if client is not None:
        query = query.where(UpstreamRequest.client == client)
    if job_id is not None:
        query = query.where(UpstreamRequest.job_id == job_id)
    async with ctx.db.session() as session:
        rows = (await session.execute(query.limit(max(1, min(limit, 1000))))).scalars().all()
    return [
        LoggedRequest(
            id=r.id,
            ts=r.ts,
            client=r.client,
            method=r.method,
            url=r.url,
            status=r.status,
            duration_ms=r.duration_ms,
            outcome=r.outcome,
            request_body=r.request_body,
            response_body=r.response_body,
            error=r.error,
            job_id=r.job_id,
        )
        for r in rows
    ]


@periodic_task("upstream_log_purge", default_interval=3600)
async def purge_upstream_log(ctx: AppContext, log: TaskLog) -> TaskResult:
    """Delete upstream request rows older than ``upstream_log_retention_days`` (0: delete all)."""
    days = ctx.settings.upstream_log_retention_days
    statement = delete(UpstreamRequest)
    cutoff: dt.datetime | None = None
    if days > 0:
        cutoff = utcnow() - dt.timedelta(days=days)
        statement = statement.where(UpstreamRequest.ts < cutoff)
    async with ctx.db.session() as session:
        result = await session.execute(statement.execution_options(synchronize_session=False))
    deleted = int(getattr(result, "rowcount", 0) or 0)
    if days > 0:
        await log(f"deleted {deleted} upstream requests older than {days} days")
    else:
        await log(f"deleted {deleted} upstream requests (retention is 0: nothing is kept)")
    details: dict[str, Any] = {"days": days, "cutoff": cutoff.isoformat() if cutoff else None}
    return TaskResult(processed=deleted, errors=0, details=details)
