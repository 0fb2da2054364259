"""``/api/v1/jobs``: inspect the durable job queue, read a job's log, cancel and reset jobs.

Payloads are shown with secret-looking keys redacted: a deploy payload may carry a root password the
billing side chose, and the API is for operators, not for re-reading secrets.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from vpsbridge.jobs import queue
from vpsbridge.logs import scrub
from vpsbridge.store.models import Job
from vpsbridge.web.api.auth import ApiActor, AuditedRoute, Authorize
from vpsbridge.web.deps import Ctx
from vpsbridge.web.errors import APIError

router = APIRouter(
    prefix="/jobs", tags=["jobs"], route_class=AuditedRoute, dependencies=[Depends(Authorize())]
)

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobOut(BaseModel):
    id: int
    kind: str
    status: str
    payload: dict[str, Any]
    resource_key: str | None
    dedupe_key: str | None
    step_index: int
    attempts: int
    max_attempts: int
    run_at: dt.datetime
    cancel_requested: bool
    last_error: str | None
    result: dict[str, Any] | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class JobLogLine(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ts: dt.datetime
    level: str
    step: str | None
    message: str


class JobAction(BaseModel):
    id: int
    status: str


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: ``retry`` from the failed step, ``restart`` from the first step, or ``done`` (fixed by hand).
    mode: Literal["retry", "restart", "done"] = "retry"


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=job.status,
        payload=scrub(dict(job.payload or {})),
        resource_key=job.resource_key,
        dedupe_key=job.dedupe_key,
        step_index=job.step_index,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        run_at=job.run_at,
        cancel_requested=job.cancel_requested,
        last_error=job.last_error,
        result=job.result,
        started_at=job.started_at,
        finished_at=job.finished_at,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


def _job_error(exc: queue.JobError) -> APIError:
    if isinstance(exc, queue.JobNotFound):
        return APIError(404, str(exc), code="not_found")
    return APIError(409, str(exc), code="conflict")


@router.get("", summary="List jobs, newest first")
async def list_jobs(
    ctx: Ctx,
    status: Annotated[list[JobStatus] | None, Query()] = None,
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[JobOut]:
    jobs = await queue.list_jobs(ctx, status=status or None, kind=kind, limit=limit, offset=offset)
    return [job_out(job) for job in jobs]


@router.get("/{job_id}", summary="Show a job")
async def get_job(ctx: Ctx, job_id: int) -> JobOut:
    job = await queue.get_job(ctx, job_id)
    if job is None:
        raise APIError(404, f"job {job_id} does not exist", code="not_found")
    return job_out(job)


@router.get("/{job_id}/log", summary="A job's log lines (page with after_id)")
async def get_job_log(
    ctx: Ctx,
    job_id: int,
    after_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[JobLogLine]:
    if await queue.get_job(ctx, job_id) is None:
        raise APIError(404, f"job {job_id} does not exist", code="not_found")
    lines = await queue.job_log(ctx, job_id, after_id=after_id, limit=limit)
    return [JobLogLine.model_validate(line) for line in lines]


@router.post("/{job_id}/cancel", summary="Cancel a job (running jobs stop at their next step)")
async def cancel_job(ctx: Ctx, actor: ApiActor, job_id: int) -> JobAction:
    try:
        status = await queue.cancel(ctx, job_id, actor)
    except queue.JobError as exc:
        raise _job_error(exc) from None
    return JobAction(id=job_id, status=status)


@router.post("/{job_id}/reset", summary="Reset a failed or cancelled job")
async def reset_job(ctx: Ctx, actor: ApiActor, job_id: int, body: ResetRequest | None = None) -> JobAction:
    mode = body.mode if body is not None else "retry"
    try:
        status = await queue.reset(ctx, job_id, actor, mode=mode)
    except queue.JobError as exc:
        raise _job_error(exc) from None
    return JobAction(id=job_id, status=status)
