"""Periodic tasks in one process, on SQLite and PostgreSQL: schedules, cron runs, atomic firing, purge."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from jobs_support.helpers import app, key, only_tasks, record_file
from jobs_support.workflows import read_records
from sqlalchemy import select

from vpsbridge.jobs import periodic, queue
from vpsbridge.jobs.maintenance import job_log_purge
from vpsbridge.jobs.periodic import TaskLog, TaskResult, periodic_task, run_task
from vpsbridge.jobs.queue import LogLine
from vpsbridge.jobs.worker import Worker
from vpsbridge.services.context import AppContext
from vpsbridge.store.models import Job, JobLog, PeriodicTask, utcnow

__all__ = ["app", "job_log_purge", "key", "record_file"]


@periodic_task("t_broken", default_interval=0)
async def t_broken(app: AppContext, log: TaskLog) -> TaskResult:
    await log("about to fail")
    raise ValueError("upstream returned garbage")


async def test_cron_run_respects_interval_and_force(app: AppContext, record_file: Path) -> None:
    app.settings.task_intervals = {"t_tick": 100}  # 1 s after time_scale
    streamed: list[LogLine] = []
    first = await run_task(app, "t_tick", log=streamed.append)
    assert first is not None
    assert first.processed == 1
    assert await run_task(app, "t_tick") is None  # not due again yet
    forced = await run_task(app, "t_tick", force=True)
    assert forced is not None
    assert len(read_records(record_file)) == 2
    assert [(line.job_id, line.step, line.message) for line in streamed] == [(None, "t_tick", "tick")]
    async with app.db.session() as session:
        row = await session.get(PeriodicTask, "t_tick")
        persisted = (await session.scalars(select(JobLog).where(JobLog.step == "t_tick"))).all()
    assert row is not None
    assert row.last_result == {"processed": 1, "errors": 0, "details": first.details}
    assert row.next_run_at is not None
    assert row.last_run_at is not None
    assert 0.5 < (row.next_run_at - row.last_run_at).total_seconds() <= 1.0
    assert len(persisted) == 2


async def test_interval_zero_disables_unless_forced(app: AppContext, record_file: Path) -> None:
    app.settings.task_intervals = only_tasks(t_tick=0)
    assert await run_task(app, "t_tick") is None
    assert await run_task(app, "t_never") is None  # default interval 0
    assert await periodic.fire_due(app) == []
    assert await queue.list_jobs(app) == []
    assert read_records(record_file) == []
    assert await run_task(app, "t_never", force=True) is not None
    assert [r[1] for r in read_records(record_file)] == ["t_never"]


async def test_task_exception_becomes_an_error_result(app: AppContext) -> None:
    result = await run_task(app, "t_broken", force=True)
    assert result is not None
    assert (result.processed, result.errors) == (0, 1)
    assert "ValueError: upstream returned garbage" in result.details["exception"]


async def test_concurrent_firing_queues_one_job(app: AppContext) -> None:
    app.settings.task_intervals = only_tasks(t_tick=100)
    fired = await asyncio.gather(*(periodic.fire_due(app) for _ in range(6)))
    assert sum(names.count("t_tick") for names in fired) == 1
    jobs = await queue.list_jobs(app, kind="periodic:t_tick")
    assert len(jobs) == 1
    assert jobs[0].resource_key == "periodic:t_tick"
    assert await periodic.fire_due(app) == []  # next run is 1 s away


async def test_worker_runs_fired_task_as_a_job(app: AppContext, record_file: Path) -> None:
    app.settings.task_intervals = only_tasks(t_tick=1000)
    await Worker(app, concurrency=2, worker_id="w", periodic=True).run_until_idle(timeout=20)
    jobs = await queue.list_jobs(app, kind="periodic:t_tick")
    assert [j.status for j in jobs] == ["succeeded"]
    assert jobs[0].result is not None
    assert jobs[0].result["processed"] == 1
    statuses = {s.name: s for s in await periodic.task_statuses(app)}
    assert statuses["t_tick"].interval == 10.0
    assert statuses["t_tick"].last_result is not None
    assert statuses["t_never"].interval == 0
    assert [r[1] for r in read_records(record_file)] == ["t_tick"]


async def test_job_log_purge_keeps_lines_of_unfinished_jobs(app: AppContext) -> None:
    old = utcnow() - dt.timedelta(days=app.settings.job_log_retention_days + 1)
    finished = await queue.enqueue(app, "t.three", {})
    pending = await queue.enqueue(app, "t.three", {})
    async with app.db.session() as session:
        job = await session.get(Job, finished)
        assert job is not None
        job.status = "succeeded"
        session.add_all(
            [
                JobLog(job_id=finished, ts=old, message="old, finished"),
                JobLog(job_id=finished, ts=utcnow(), message="new, finished"),
                JobLog(job_id=pending, ts=old, message="old, pending"),
                JobLog(job_id=None, ts=old, message="old cron line"),
            ]
        )
    result = await run_task(app, "job_log_purge", force=True)
    assert result is not None
    assert result.processed == 2
    async with app.db.session() as session:
        left = (await session.scalars(select(JobLog.message).where(JobLog.step.is_(None)))).all()
    assert sorted(left) == ["new, finished", "old, pending"]


async def test_shortened_interval_takes_effect_at_once(app: AppContext, record_file: Path) -> None:
    app.settings.task_intervals = only_tasks(t_tick=10_000)  # 100 s after time_scale
    assert await run_task(app, "t_tick") is not None
    assert await run_task(app, "t_tick") is None
    assert await periodic.fire_due(app) == []
    # The operator shortens the interval: the old "next run in 100 s" must not hold it back.
    app.settings.task_intervals = only_tasks(t_tick=100)
    assert await periodic.fire_due(app) == ["t_tick"]
    assert await periodic.fire_due(app) == []
    assert len(read_records(record_file)) == 1
