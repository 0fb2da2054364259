"""Jobs as the operator console shows them: lists, the step history with timings, deletion.

The job engine (:mod:`vpsbridge.jobs.queue`) owns enqueue/cancel/reset; this module reads, words the
engine's refusals for the console (:func:`cancel_job`, :func:`reset_job`) and, for "delete record",
removes a *finished* job with its steps and log lines (they cascade). A job that is queued or running
is never deleted: cancel it first, so no worker is left holding a lease on a row that no longer
exists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, or_, select

from vpsbridge.jobs import queue
from vpsbridge.jobs.queue import FINISHED, LogLine, display_status, job_log
from vpsbridge.logs import scrub
from vpsbridge.services.admin_console.upstream import UpstreamQuery, search_upstream
from vpsbridge.services.admin_console.wording import N_, WordedConflict, WordedInvalid, WordedNotFound
from vpsbridge.services.audit import Actor, record
from vpsbridge.services.upstream_log import LoggedRequest
from vpsbridge.store.models import Job, JobStep
from vpsbridge.workflows.base import get_workflow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

#: Statuses an operator can filter by; ``waiting`` is a running job parked between steps.
JOB_FILTERS = ("queued", "waiting", "running", "succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class JobSummary:
    id: int
    kind: str
    status: str
    attempts: int
    max_attempts: int
    step_index: int
    resource_key: str | None
    last_error: str | None
    run_at: dt.datetime
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    cancel_requested: bool

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def resettable(self) -> bool:
        return self.status in ("failed", "cancelled")


def summary_of(job: Job) -> JobSummary:
    return JobSummary(
        id=job.id,
        kind=job.kind,
        status=display_status(job),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        step_index=job.step_index,
        resource_key=job.resource_key,
        last_error=scrub(job.last_error) if job.last_error else None,
        run_at=job.run_at,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cancel_requested=job.cancel_requested,
    )


def _status_filter(query: Select[Any], status: str | None) -> Select[Any]:
    if status == "waiting":
        return query.where(Job.status == "running", Job.lease_owner.is_(None))
    if status == "running":
        return query.where(Job.status == "running", Job.lease_owner.is_not(None))
    if status:
        return query.where(Job.status == status)
    return query


async def list_jobs(
    ctx: AppContext,
    *,
    status: str | None = None,
    kind: str | None = None,
    resource: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[JobSummary]:
    """Newest first, filtered by display status, workflow kind and resource key."""
    query = _status_filter(select(Job), status)
    if kind:
        query = query.where(Job.kind == kind)
    if resource:
        query = query.where(Job.resource_key == resource)
    query = query.order_by(Job.id.desc()).limit(max(1, min(limit, 500))).offset(max(0, offset))
    async with ctx.db.session() as session:
        return [summary_of(j) for j in (await session.scalars(query)).all()]


async def job_kinds(ctx: AppContext) -> list[str]:
    async with ctx.db.session() as session:
        return sorted((await session.scalars(select(Job.kind).distinct())).all())


async def failing_jobs(ctx: AppContext, *, limit: int = 10) -> list[JobSummary]:
    """Jobs that need an operator: failed ones and live ones already retrying after an error."""
    query = (
        select(Job)
        .where(
            or_(
                Job.status == "failed",
                (Job.status.in_(("queued", "running"))) & (Job.attempts > 1) & Job.last_error.is_not(None),
            )
        )
        .order_by(Job.updated_at.desc(), Job.id.desc())
        .limit(limit)
    )
    async with ctx.db.session() as session:
        return [summary_of(j) for j in (await session.scalars(query)).all()]


async def jobs_by_status(ctx: AppContext) -> dict[str, int]:
    """Counts per display status (``waiting`` split out of ``running``)."""
    parked = (Job.status == "running") & Job.lease_owner.is_(None)
    async with ctx.db.session() as session:
        rows = (
            await session.execute(
                select(Job.status, parked.label("parked"), func.count()).group_by(Job.status, "parked")
            )
        ).all()
    counts: dict[str, int] = {}
    for status, is_parked, count in rows:
        key = "waiting" if is_parked else str(status)
        counts[key] = counts.get(key, 0) + int(count)
    return counts


@dataclass(frozen=True)
class StepView:
    """One step execution with its timing, or a step of the workflow that has not run yet."""

    index: int
    name: str
    outcome: str  # done | wait | retry | fail | error | pending
    detail: str | None = None
    attempt: int | None = None
    worker: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @property
    def duration_ms(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds() * 1000, 1)


@dataclass(frozen=True)
class JobDetail:
    job: JobSummary
    payload: dict[str, Any]
    state: dict[str, Any]
    result: dict[str, Any] | None
    dedupe_key: str | None
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    steps: list[StepView]
    log: list[LogLine]
    upstream: list[LoggedRequest] = field(default_factory=list)


def _pending_steps(kind: str, executed: Sequence[StepView], next_index: int) -> list[StepView]:
    workflow = get_workflow(kind)
    if workflow is None:
        return []
    done = {s.index for s in executed if s.outcome == "done"}
    return [
        StepView(index=i, name=step.name, outcome="pending")
        for i, step in enumerate(workflow.steps)
        if i >= next_index and i not in done
    ]


async def job_detail(ctx: AppContext, job_id: int, *, log_limit: int = 2000) -> JobDetail:
    """Everything the job page shows: state, step history with timings, log lines, upstream calls."""
    async with ctx.db.session() as session:
        job = await session.get(Job, job_id)
        if job is None:
            raise WordedNotFound(N_("Job %(job)s does not exist."), job=job_id)
        steps = (
            await session.scalars(select(JobStep).where(JobStep.job_id == job_id).order_by(JobStep.id))
        ).all()
        summary = summary_of(job)
        executed = [
            StepView(
                index=s.index,
                name=s.name,
                outcome=s.outcome,
                detail=scrub(s.detail) if s.detail else None,
                attempt=s.attempt,
                worker=s.worker,
                started_at=s.started_at,
                finished_at=s.finished_at,
            )
            for s in steps
        ]
        detail = JobDetail(
            job=summary,
            payload=scrub(dict(job.payload or {})),
            state=scrub(dict(job.state or {})),
            result=scrub(dict(job.result)) if job.result else None,
            dedupe_key=job.dedupe_key,
            lease_owner=job.lease_owner,
            lease_expires_at=job.lease_expires_at,
            steps=executed + ([] if summary.finished else _pending_steps(job.kind, executed, job.step_index)),
            log=[],
        )
    lines = await job_log(ctx, job_id, limit=log_limit)
    upstream = await search_upstream(ctx, UpstreamQuery(job_id=job_id, limit=200))
    return JobDetail(**{**detail.__dict__, "log": lines, "upstream": upstream})


async def delete_job(ctx: AppContext, job_id: int, actor: Actor) -> None:
    """Delete a finished job record with its steps and log (an operator tidying up)."""
    async with ctx.db.session() as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise WordedNotFound(N_("Job %(job)s does not exist."), job=job_id)
        if job.status not in FINISHED:
            raise WordedConflict(
                N_("Job %(job)s is still %(status)s; cancel it before deleting its record."),
                job=job_id,
                status=display_status(job),
            )
        await record(session, actor, "job.delete", "job", job_id, {"kind": job.kind, "status": job.status})
        await session.delete(job)
        await session.flush()


#: The operator's "reset status" choices on the job page.
RESET_MODES = ("retry", "restart", "done")


async def _refusal(ctx: AppContext, job_id: int) -> tuple[str, str | None] | None:
    """(display status, dedupe key) of a job the engine just refused to act on; None if it is gone."""
    async with ctx.db.session() as session:
        job = await session.get(Job, job_id)
        return (display_status(job), job.dedupe_key) if job is not None else None


async def cancel_job(ctx: AppContext, job_id: int, actor: Actor) -> str:
    """Cancel through the engine; its status afterwards (``cancelled``, or ``running`` until the next
    step). The engine's refusal comes back as a sentence the console can translate."""
    try:
        return await queue.cancel(ctx, job_id, actor)
    except queue.JobError as exc:
        found = await _refusal(ctx, job_id)
        if isinstance(exc, queue.JobNotFound) or found is None:
            raise WordedNotFound(N_("Job %(job)s does not exist."), job=job_id) from None
        raise WordedConflict(
            N_("Job %(job)s has already ended (%(status)s); there is nothing to cancel."),
            job=job_id,
            status=found[0],
        ) from None


async def reset_job(ctx: AppContext, job_id: int, actor: Actor, mode: str) -> str:
    """Reset a failed or cancelled job through the engine (``retry``, ``restart`` or ``done``)."""
    if mode not in RESET_MODES:
        raise WordedInvalid(N_("Choose retry, restart or mark done."), field="mode")
    try:
        return await queue.reset(ctx, job_id, actor, mode=mode)
    except queue.JobError as exc:
        found = await _refusal(ctx, job_id)
        if isinstance(exc, queue.JobNotFound) or found is None:
            raise WordedNotFound(N_("Job %(job)s does not exist."), job=job_id) from None
        status, dedupe_key = found
        if status not in ("failed", "cancelled"):
            raise WordedConflict(
                N_("Job %(job)s is %(status)s; only failed or cancelled jobs can be reset."),
                job=job_id,
                status=status,
            ) from None
        raise WordedConflict(
            N_(
                "Another queued job already does this work (dedupe key %(key)s); "
                "let it run or cancel it first."
            ),
            key=dedupe_key or "",
        ) from None
