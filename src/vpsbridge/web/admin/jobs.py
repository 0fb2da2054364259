"""Jobs: the list, the step history with timings and log lines, and the operator actions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vpsbridge.jobs import queue
from vpsbridge.services import admin_console
from vpsbridge.services.errors import Conflict, NotFound
from vpsbridge.web.admin.deps import PREFIX, Signed, flash_of, int_param, see_other
from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui import UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/jobs")
async def jobs_page(request: Request, operator: Signed) -> Response:
    ctx = get_ctx(request)
    status = request.query_params.get("status") or None
    kind = request.query_params.get("kind") or None
    if status not in (None, *admin_console.JOB_FILTERS):
        status = None
    offset = int_param(request, "offset") or 0
    jobs = await admin_console.list_jobs(ctx, status=status, kind=kind, limit=50, offset=offset)
    message, flash_kind = flash_of(request)
    return render(
        request,
        "admin/jobs.html",
        {
            "op": operator,
            "nav": "jobs",
            "jobs": jobs,
            "kinds": await admin_console.job_kinds(ctx),
            "statuses": admin_console.JOB_FILTERS,
            "status": status,
            "kind": kind,
            "offset": offset,
            "flash": message,
            "flash_kind": flash_kind,
        },
    )


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: int, operator: Signed) -> Response:
    detail = await admin_console.job_detail(get_ctx(request), job_id)
    message, flash_kind = flash_of(request)
    # htmx polls this same page and swaps in its #job-live part (steps, log) while the job runs.
    return render(
        request,
        "admin/job.html",
        {"op": operator, "nav": "jobs", "d": detail, "flash": message, "flash_kind": flash_kind},
    )


def _translate(exc: queue.JobError) -> Exception:
    return NotFound(str(exc)) if isinstance(exc, queue.JobNotFound) else Conflict(str(exc))


@router.post("/jobs/{job_id}/cancel")
async def job_cancel(request: Request, job_id: int, operator: Signed) -> Response:
    try:
        status = await queue.cancel(get_ctx(request), job_id, operator.actor)
    except queue.JobError as exc:
        raise _translate(exc) from None
    text = (
        "Job cancelled."
        if status == "cancelled"
        else "Cancellation requested; the job stops at its next step."
    )
    return see_other(f"{PREFIX}/jobs/{job_id}", flash=text)


@router.post("/jobs/{job_id}/reset")
async def job_reset(request: Request, job_id: int, operator: Signed) -> Response:
    form = await request.form()
    mode = str(form.get("mode", "retry"))
    try:
        status = await queue.reset(get_ctx(request), job_id, operator.actor, mode=mode)
    except queue.JobError as exc:
        raise _translate(exc) from None
    text = {"retry": "Job queued again from the failed step.", "restart": "Job queued again from the start."}
    return see_other(f"{PREFIX}/jobs/{job_id}", flash=text.get(mode, f"Job marked {status}."))


@router.post("/jobs/{job_id}/delete")
async def job_delete(request: Request, job_id: int, operator: Signed) -> Response:
    await admin_console.delete_job(get_ctx(request), job_id, operator.actor)
    return see_other(f"{PREFIX}/jobs", flash=f"Job {job_id} deleted.")
