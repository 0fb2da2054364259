"""Putting jobs on the queue and the operator actions on them (cancel, reset, inspect).

Dedupe keys are enforced by the partial unique index ``uq_jobs_waiting_dedupe`` rather than by a
"look, then insert" check, because two web processes enqueueing the same key at the same moment would
both see nothing and both insert. The insert runs in a savepoint; when the index rejects it, the
existing waiting job's id is returned instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from vpsbridge.jobs import wakeup
from vpsbridge.logs import scrub
from vpsbridge.services.audit import Actor, record
from vpsbridge.store.db import Database
from vpsbridge.store.models import Job, JobLog, utcnow
from vpsbridge.workflows.base import get_workflow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

FINISHED = ("succeeded", "failed", "cancelled")
LOGS = cast(Table, JobLog.__table__)
ResetMode = str  # "retry" | "done" | "restart"


class JobError(Exception):
    """An operator action that does not apply to the job in its current state."""


class JobNotFound(JobError):
    pass


Target: TypeAlias = "AppContext | Database | AsyncSession"


def _is_app(target: Target) -> TypeGuard[AppContext]:
    # Duck-typed so this module does not import the application context (and its cache) at runtime.
    return not isinstance(target, Database | AsyncSession)


@contextlib.asynccontextmanager
async def _session(target: Target) -> AsyncIterator[tuple[AsyncSession, bool]]:
    """A session for ``target``; the flag says whether we own (and so commit) its transaction."""
    if isinstance(target, AsyncSession):
        yield target, False
        return
    db = target if isinstance(target, Database) else target.db
    async with db.session() as session:
        yield session, True


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def enqueue(
    target: Target,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    dedupe_key: str | None = None,
    run_at: dt.datetime | None = None,
    resource_key: str | None = None,
    max_attempts: int | None = None,
) -> int:
    """Queue a job of workflow ``kind`` and return its id.

    With ``dedupe_key``, at most one *queued* job carries the key: if one exists its id is returned
    and nothing is inserted (a running job with the same key does not count, so work that arrives
    while a job runs is not lost). ``resource_key`` defaults to the workflow's own resource function.
    Passing an :class:`AsyncSession` makes the job part of the caller's transaction, so a record and
    the job that processes it commit together.
    """
    payload = dict(payload or {})
    workflow = get_workflow(kind)
    if resource_key is None and workflow is not None:
        resource_key = workflow.resource_key(payload)
    if max_attempts is None:
        if workflow is not None and workflow.max_attempts is not None:
            max_attempts = workflow.max_attempts
        elif _is_app(target):
            max_attempts = target.settings.job_max_attempts
        else:
            max_attempts = 8
    when = run_at or utcnow()
    async with _session(target) as (session, owned):
        job = Job(
            kind=kind,
            status="queued",
            payload=payload,
            state={},
            resource_key=resource_key,
            dedupe_key=dedupe_key,
            run_at=when,
            max_attempts=max_attempts,
        )
        existing: int | None = None
        try:
            async with session.begin_nested():
                session.add(job)
                await session.flush()
        except IntegrityError:
            if dedupe_key is None:
                raise
            existing = await session.scalar(
                select(Job.id).where(Job.status == "queued", Job.dedupe_key == dedupe_key)
            )
            if existing is None:  # the other job was claimed in between; queue ours after all
                job = Job(
                    kind=kind,
                    status="queued",
                    payload=payload,
                    state={},
                    resource_key=resource_key,
                    dedupe_key=dedupe_key,
                    run_at=when,
                    max_attempts=max_attempts,
                )
                session.add(job)
                await session.flush()
        if existing is not None:
            return existing
        if _dialect(session) == "postgresql":
            await wakeup.pg_notify(session)
        job_id = job.id
    if owned and _is_app(target):
        await wakeup.publish(target)
    return job_id


def display_status(job: Job) -> str:
    """The status an operator should read: a parked job (``Wait`` or retry backoff) is ``waiting``.

    Parked jobs stay ``running`` in the table so they keep their resource between steps.
    """
    if job.status == "running" and job.lease_owner is None:
        return "waiting"
    return job.status


async def get_job(target: Target, job_id: int) -> Job | None:
    async with _session(target) as (session, _):
        return await session.get(Job, job_id)


async def list_jobs(
    target: Target,
    *,
    status: str | Sequence[str] | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Job]:
    """Newest first; ``status`` is one status or several."""
    query = select(Job).order_by(Job.id.desc()).limit(limit).offset(offset)
    if isinstance(status, str):
        query = query.where(Job.status == status)
    elif status is not None:
        query = query.where(Job.status.in_(list(status)))
    if kind is not None:
        query = query.where(Job.kind == kind)
    async with _session(target) as (session, _):
        return list((await session.scalars(query)).all())


@dataclass(frozen=True)
class LogLine:
    id: int
    job_id: int | None
    ts: dt.datetime
    level: str
    step: str | None
    message: str

    def format(self) -> str:
        """One line as printed by ``worker --verbose``, ``cron`` and ``jobs log``."""
        job = f"job {self.job_id}" if self.job_id is not None else "task"
        step = f" [{self.step}]" if self.step else ""
        level = "" if self.level == "info" else f" {self.level.upper()}"
        stamp = self.ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return f"{stamp} {job}{step}{level}: {self.message}"


async def job_log(
    target: Target, job_id: int, after_id: int | None = None, limit: int = 1000
) -> list[LogLine]:
    """Log lines of a job in the order they were written; ``after_id`` pages/tails the log."""
    query = select(JobLog).where(JobLog.job_id == job_id).order_by(JobLog.id).limit(limit)
    if after_id is not None:
        query = query.where(JobLog.id > after_id)
    async with _session(target) as (session, _):
        rows = (await session.scalars(query)).all()
    return [LogLine(r.id, r.job_id, r.ts, r.level, r.step, r.message) for r in rows]


async def write_log(
    executor: AsyncSession | AsyncConnection,
    job_id: int | None,
    message: str,
    *,
    level: str = "info",
    step: str | None = None,
) -> LogLine:
    """Add one log line in the caller's transaction (a session or a bare connection).

    The message is scrubbed of known secret values first: steps log upstream errors verbatim, and a
    credential echoed in one must not end up in a table operators browse.
    """
    message = scrub(message)
    ts = utcnow()
    result = await executor.execute(
        insert(LOGS)
        .values(job_id=job_id, ts=ts, level=level, step=step, message=message)
        .returning(LOGS.c.id)
    )
    return LogLine(int(result.scalar_one()), job_id, ts, level, step, message)


async def cancel(target: Target, job_id: int, actor: Actor) -> str:
    """Cancel a job: a queued or parked job is cancelled at once; a running one at its next step boundary.

    Returns the job's status afterwards (``cancelled`` or ``running`` with the request recorded).
    Cancelling a finished job is an error an operator should see, not a silent no-op.
    """
    async with _session(target) as (session, _):
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise JobNotFound(f"job {job_id} does not exist")
        if job.status in FINISHED:
            raise JobError(f"job {job_id} is already {job.status}")
        now = utcnow()
        if job.status == "queued" or job.lease_owner is None:
            # Queued, or parked between steps (Wait / retry backoff): no worker holds it, so it can
            # end now instead of when it wakes up; its resource is freed at once.
            job.status = "cancelled"
            job.finished_at = now
            job.lease_expires_at = None
            message = "cancelled by operator"
        else:
            job.cancel_requested = True
            message = "cancellation requested; stops at the next step boundary"
        await write_log(session, job_id, f"{message} ({actor.type}:{actor.id or '-'})", level="warning")
        await record(session, actor, "job.cancel", "job", job_id, {"status": job.status})
        return job.status


async def reset(target: Target, job_id: int, actor: Actor, *, mode: ResetMode = "retry") -> str:
    """Operator "reset status" of a failed or cancelled job.

    * ``retry``: queue it again from the step that failed, with a fresh attempt budget;
    * ``restart``: queue it again from step 0 with an empty state;
    * ``done``: mark it succeeded (the operator fixed things by hand).
    """
    if mode not in ("retry", "done", "restart"):
        raise JobError(f"unknown reset mode {mode!r} (retry, done or restart)")
    async with _session(target) as (session, _):
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise JobNotFound(f"job {job_id} does not exist")
        if job.status not in ("failed", "cancelled"):
            raise JobError(f"job {job_id} is {job.status}; only failed or cancelled jobs can be reset")
        previous = job.status
        now = utcnow()
        if mode == "done":
            job.status = "succeeded"
            job.finished_at = now
        else:
            if job.dedupe_key is not None:
                taken = await session.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(Job.status == "queued", Job.dedupe_key == job.dedupe_key, Job.id != job_id)
                )
                if taken:
                    raise JobError(f"another queued job already carries dedupe key {job.dedupe_key!r}")
            job.status = "queued"
            job.run_at = now
            job.attempts = 0
            job.cancel_requested = False
            job.finished_at = None
            job.lease_owner = None
            job.lease_expires_at = None
            if mode == "restart":
                job.step_index = 0
                job.state = {}
                job.result = None
        await write_log(
            session,
            job_id,
            f"reset ({mode}) from {previous} by {actor.type}:{actor.id or '-'}",
            level="warning",
        )
        await record(session, actor, "job.reset", "job", job_id, {"mode": mode, "from": previous})
        if job.status == "queued" and _dialect(session) == "postgresql":
            await wakeup.pg_notify(session)
        status = job.status
    if status == "queued" and _is_app(target):
        await wakeup.publish(target)
    return status


async def count_pending(target: Target) -> int:
    """Jobs that are queued (due or not) or running: what ``run_until_idle`` waits for."""
    async with _session(target) as (session, _):
        value = await session.scalar(
            select(func.count()).select_from(Job).where(Job.status.in_(("queued", "running")))
        )
    return int(value or 0)
