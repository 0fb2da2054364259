"""The engine's own housekeeping tasks."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select

from vpsbridge.jobs.periodic import TaskLog, TaskResult, periodic_task
from vpsbridge.jobs.queue import FINISHED
from vpsbridge.store.models import Job, JobLog, utcnow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext


@periodic_task("job_log_purge", default_interval=3600)
async def job_log_purge(app: AppContext, log: TaskLog) -> TaskResult:
    """Delete log lines older than ``job_log_retention_days`` of finished jobs and of cron runs.

    Lines of queued or running jobs are kept whatever their age: an operator investigating a job
    that has been retrying for weeks needs its whole story.
    """
    days = app.settings.job_log_retention_days
    cutoff = utcnow() - dt.timedelta(days=days)
    finished = select(Job.id).where(Job.status.in_(FINISHED))
    async with app.db.session() as session:
        result = await session.execute(
            delete(JobLog)
            .where(JobLog.ts < cutoff, or_(JobLog.job_id.is_(None), JobLog.job_id.in_(finished)))
            .execution_options(synchronize_session=False)
        )
    deleted = int(getattr(result, "rowcount", 0) or 0)
    await log(f"deleted {deleted} log lines older than {days} days")
    return TaskResult(processed=deleted, errors=0, details={"cutoff": cutoff.isoformat(), "days": days})
