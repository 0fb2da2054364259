"""Jobs: the list, the step history with timings and log lines, and the operator actions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vpsbridge.services import admin_console
from vpsbridge.web.admin.deps import PREFIX, Signed, flash_of, int_param, see_other
from vpsbridge.web.admin.wording import AdminRoute
from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui import _, render
from vpsbridge.web.ui.i18n import N_

router = APIRouter(route_class=AdminRoute, include_in_schema=False)


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


@router.post("/jobs/{job_id}/cancel")
async def job_cancel(request: Request, job_id: int, operator: Signed) -> Response:
    status = await admin_console.cancel_job(get_ctx(request), job_id, operator.actor)
    text = (
        _(request, "Job cancelled.")
        if status == "cancelled"
        else _(request, "Cancellation requested; the job stops at its next step.")
    )
    return see_other(f"{PREFIX}/jobs/{job_id}", flash=text)


#: Reset mode -> what the operator reads afterwards.
RESET_MESSAGES = {
    "retry": N_("Job queued again from the failed step."),
    "restart": N_("Job queued again from the start."),
    "done": N_("Job marked as succeeded."),
}


@router.post("/jobs/{job_id}/reset")
async def job_reset(request: Request, job_id: int, operator: Signed) -> Response:
    form = await request.form()
    mode = str(form.get("mode", "retry"))
    await admin_console.reset_job(get_ctx(request), job_id, operator.actor, mode)
    return see_other(f"{PREFIX}/jobs/{job_id}", flash=_(request, RESET_MESSAGES[mode]))


@router.post("/jobs/{job_id}/delete")
async def job_delete(request: Request, job_id: int, operator: Signed) -> Response:
    await admin_console.delete_job(get_ctx(request), job_id, operator.actor)
    return see_other(f"{PREFIX}/jobs", flash=_(request, "Job %(job)s deleted.", job=job_id))
