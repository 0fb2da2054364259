"""Upstream requests made inside a workflow step are recorded with the job's id, so an operator
looking at a failed step sees the exact upstream calls it made."""

from __future__ import annotations

import httpx2
from jobs_support.helpers import app, key, record_file

from vpsbridge.http import UpstreamClient
from vpsbridge.jobs import queue
from vpsbridge.jobs.worker import Worker
from vpsbridge.services.context import AppContext
from vpsbridge.services.upstream_log import recent
from vpsbridge.workflows.base import Done, Step, StepContext, Workflow, register_workflow

__all__ = ["app", "key", "record_file"]


def _answer(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json={"ok": True})


async def _call_upstream(step: StepContext) -> Done:
    client = UpstreamClient(
        "http://upstream.test",
        name="probe",
        transport=httpx2.MockTransport(_answer),
        recorder=step.app.extras["upstream_recorder"],
    )
    async with client:
        await client._request("GET", "/ping")
    return Done()


register_workflow(Workflow("t.upstream_probe", [Step("probe", _call_upstream)]))


async def test_step_upstream_calls_carry_the_job_id(app: AppContext) -> None:
    job_id = await queue.enqueue(app, "t.upstream_probe", {})
    await Worker(app, concurrency=1, worker_id="w1", periodic=False).run_until_idle(timeout=30)
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert job.status == "succeeded"
    rows = await recent(app, client="probe")
    assert [(r.method, r.status, r.job_id) for r in rows] == [("GET", 200, job_id)]
