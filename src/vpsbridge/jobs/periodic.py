"""Periodic tasks: scheduled work with per-task intervals from the configuration.

A task is an async function ``(app, log) -> TaskResult`` registered with :func:`periodic_task`. Its
interval comes from ``task_intervals`` in the settings, then ``DEFAULT_TASK_INTERVALS``, then the
decorator's ``default_interval``; 0 disables it. Like every engine delay it is multiplied by
``time_scale``.

Firing is atomic across any number of workers: the ``periodic_tasks`` row is advanced with a
conditional ``UPDATE ... SET next_run_at = now + interval WHERE next_run_at <= now`` and only the
worker whose update matched a row fires. In a worker, firing means queueing a ``periodic:<name>`` job
in the same transaction (deduplicated, and with the task as its resource so two runs never overlap),
so the run gets the job engine's log, history and lease handling. ``vpsbridge cron`` instead runs
due tasks in its own process through :func:`run_task`, for hosts that prefer system cron.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vpsbridge.config import DEFAULT_TASK_INTERVALS, Settings
from vpsbridge.jobs.queue import LogLine, enqueue, write_log
from vpsbridge.store.models import PeriodicTask, utcnow
from vpsbridge.workflows.base import Done, Step, StepContext, Workflow, register_workflow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

JOB_PREFIX = "periodic:"


@dataclass
class TaskResult:
    """What a periodic run reports: items handled, items that failed, and task-specific details."""

    processed: int = 0
    errors: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TaskLog(Protocol):
    async def __call__(self, message: str, level: str = "info") -> None: ...


TaskFunction: TypeAlias = "Callable[[AppContext, TaskLog], Awaitable[TaskResult]]"


@dataclass(frozen=True)
class TaskDef:
    name: str
    run: TaskFunction
    default_interval: int

    def interval(self, settings: Settings) -> float:
        """Seconds between runs after ``time_scale``; 0 means disabled."""
        if self.name in settings.task_intervals:
            seconds = settings.task_intervals[self.name]
        else:
            seconds = DEFAULT_TASK_INTERVALS.get(self.name, self.default_interval)
        return settings.scaled(seconds) if seconds > 0 else 0.0


_TASKS: dict[str, TaskDef] = {}


def periodic_task(name: str, *, default_interval: int = 3600) -> Callable[[TaskFunction], TaskFunction]:
    """Register a periodic task (and the ``periodic:<name>`` workflow workers run it through)."""

    def decorator(fn: TaskFunction) -> TaskFunction:
        task = TaskDef(name=name, run=fn, default_interval=default_interval)
        _TASKS[name] = task
        register_workflow(
            Workflow(
                name=JOB_PREFIX + name,
                steps=(Step("run", _step_for(task)),),
                resource_key=lambda _payload: JOB_PREFIX + name,
                max_attempts=1,
            )
        )
        return fn

    return decorator


def registered_tasks() -> dict[str, TaskDef]:
    return dict(_TASKS)


def get_task(name: str) -> TaskDef | None:
    return _TASKS.get(name)


def _step_for(task: TaskDef) -> Callable[[StepContext], Awaitable[Done]]:
    async def run(ctx: StepContext) -> Done:
        result = await task.run(ctx.app, ctx.log)
        await _record_result(ctx.app, task.name, result)
        await ctx.log(f"processed={result.processed} errors={result.errors}")
        return Done(result.as_dict())

    return run


async def _record_result(app: AppContext, name: str, result: TaskResult) -> None:
    async with app.db.session() as session:
        await session.execute(
            update(PeriodicTask)
            .where(PeriodicTask.name == name)
            .values(last_run_at=utcnow(), last_result=result.as_dict(), updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


async def _ensure_row(session: AsyncSession, name: str) -> None:
    if await session.get(PeriodicTask, name) is not None:
        return
    try:
        async with session.begin_nested():
            session.add(PeriodicTask(name=name, next_run_at=None))
            await session.flush()
    except IntegrityError:
        pass  # another process created it first


def _is_due(next_run: dt.datetime | None, now: dt.datetime, interval: float) -> bool:
    """Due: never run, time reached, or scheduled further out than the (since shortened) interval."""
    if next_run is None:
        return True
    return next_run <= now or next_run > now + dt.timedelta(seconds=interval)


async def _take_turn(
    session: AsyncSession,
    name: str,
    interval: float,
    *,
    force: bool,
    now: dt.datetime,
    seen: dt.datetime | None,
) -> bool:
    """Advance the schedule from ``seen`` (the ``next_run_at`` this caller read) if it is due.

    The UPDATE is a compare-and-swap on the value read: of several workers that read the same
    schedule, exactly one changes it, whatever their clocks or the order their transactions ran in.
    """
    if not force and not _is_due(seen, now, interval):
        return False
    column = PeriodicTask.next_run_at
    stmt = update(PeriodicTask).where(PeriodicTask.name == name)
    if not force:
        stmt = stmt.where(column.is_(None) if seen is None else column == seen)
    next_run = now + dt.timedelta(seconds=interval) if interval > 0 else None
    result = await session.execute(
        stmt.values(next_run_at=next_run, updated_at=now).execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


async def _schedules(session: AsyncSession) -> dict[str, dt.datetime | None]:
    rows = await session.execute(select(PeriodicTask.name, PeriodicTask.next_run_at))
    return {name: next_run for name, next_run in rows}


async def fire_due(app: AppContext) -> list[str]:
    """Queue a job for every enabled task that is due; returns the names fired by this caller.

    One transaction per call; schedules are read first so that a poll where nothing is due writes
    nothing (every worker calls this once per poll).
    """
    enabled = {name: task.interval(app.settings) for name, task in _TASKS.items()}
    enabled = {name: interval for name, interval in enabled.items() if interval > 0}
    if not enabled:
        return []
    fired = []
    async with app.db.session() as session:
        scheduled = await _schedules(session)
        # Read the clock *after* the schedules: a schedule another worker just committed was computed
        # from an earlier clock reading, so it can never look like a shortened interval here.
        now = utcnow()
        for name, interval in enabled.items():
            if name not in scheduled:
                await _ensure_row(session, name)
            seen = scheduled.get(name)
            if await _take_turn(session, name, interval, force=False, now=now, seen=seen):
                await enqueue(session, JOB_PREFIX + name, {}, dedupe_key=JOB_PREFIX + name)
                fired.append(name)
    return fired


LineCallback = Callable[[LogLine], None]


async def run_task(
    app: AppContext, name: str, *, force: bool = False, log: LineCallback | None = None
) -> TaskResult | None:
    """Run one task now in this process (``vpsbridge cron``); None when it is not due or disabled.

    Log lines are persisted (job id empty, step = task name) and handed to ``log`` as they are
    written. An exception is reported as a result with one error rather than raised, so one broken
    task does not stop a cron run of the others.
    """
    task = _TASKS.get(name)
    if task is None:
        raise KeyError(name)
    interval = task.interval(app.settings)
    if interval <= 0 and not force:
        return None
    async with app.db.session() as session:
        await _ensure_row(session, name)
        seen = (await _schedules(session)).get(name)
        now = utcnow()  # after the read, as in fire_due
        if not await _take_turn(session, name, interval, force=force, now=now, seen=seen):
            return None

    async def write(message: str, level: str = "info") -> None:
        async with app.db.session() as session:
            line = await write_log(session, None, message, level=level, step=name)
        if log is not None:
            log(line)

    try:
        result = await task.run(app, write)
    except Exception as exc:
        await write(f"{type(exc).__name__}: {exc}", "error")
        result = TaskResult(processed=0, errors=1, details={"exception": f"{type(exc).__name__}: {exc}"})
    await _record_result(app, name, result)
    return result


@dataclass(frozen=True)
class TaskStatus:
    name: str
    interval: float
    last_run_at: dt.datetime | None
    next_run_at: dt.datetime | None
    last_result: dict[str, Any] | None


async def task_statuses(app: AppContext) -> list[TaskStatus]:
    """Every registered task with its effective interval and schedule (``cron --list``)."""
    async with app.db.session() as session:
        rows = {r.name: r for r in (await session.scalars(select(PeriodicTask))).all()}
    out = []
    for name in sorted(_TASKS):
        row = rows.get(name)
        out.append(
            TaskStatus(
                name=name,
                interval=_TASKS[name].interval(app.settings),
                last_run_at=row.last_run_at if row else None,
                next_run_at=row.next_run_at if row else None,
                last_result=row.last_result if row else None,
            )
        )
    return out
