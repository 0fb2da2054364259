"""The ``stock_recalc`` periodic task: keep every stock-controlled product's result warm.

Billing hooks answer from results at most 30 s old and recompute older ones on demand; this task
(every 2 h by default, ``task_intervals.stock_recalc``) makes sure even products nobody looks at have
a recent figure, and its log tells the operator which products could not be read and why. Products
whose inputs were unknown count as errors, so ``vpsbridge cron`` exits 1 and cron mails someone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsbridge.jobs.periodic import TaskLog, TaskResult, periodic_task
from vpsbridge.services.stock import recalculate

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext


@periodic_task("stock_recalc", default_interval=7200)
async def stock_recalc(app: AppContext, log: TaskLog) -> TaskResult:
    report = await recalculate(app)
    summary = report.summary
    for row in report.products:
        if row.status == "unknown":
            await log(
                f"{row.product} (id {row.product_id}) left untouched: {'; '.join(row.unknown)}", "warning"
            )
    await log(
        f"stock: {summary.total} products, {summary.updated} in stock, {summary.zeroed} at 0, "
        f"{summary.skipped} left untouched"
    )
    return TaskResult(processed=summary.total, errors=summary.skipped, details=summary.model_dump())
