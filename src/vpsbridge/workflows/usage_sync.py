"""The ``usage_sync`` periodic task: disk and bandwidth figures for billing, once a day by default.

It runs before WHMCS's daily ``UsageUpdate`` needs the figures (``task_intervals.usage_sync``), so
the WHMCS cron never waits on a panel. Services whose figures could not be read count as errors,
so ``vpsbridge cron`` exits 1 and the operator hears about it; their old figures stay in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsbridge.jobs.periodic import TaskLog, TaskResult, periodic_task
from vpsbridge.services.usage import collect_usage

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext


@periodic_task("usage_sync", default_interval=86400)
async def usage_sync(app: AppContext, log: TaskLog) -> TaskResult:
    run = await collect_usage(app)
    for problem in run.problems[:50]:
        await log(problem, "warning")
    await log(
        f"usage: {run.services} services, {run.complete} complete, {run.partial} partly known, "
        f"{run.failed} unknown (previous figures kept)"
    )
    return TaskResult(
        processed=run.services,
        errors=run.failed + run.listener_errors,
        details={"complete": run.complete, "partial": run.partial, "failed": run.failed},
    )
