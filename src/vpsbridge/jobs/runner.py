"""Running one claimed job step by step, persisting after every step.

The runner owns the job only while its lease token matches. Each step runs as its own asyncio task
next to a heartbeat task that extends the lease; if a heartbeat finds the lease gone (another worker
took the job after this one stalled), the step task is cancelled and the runner walks away without
another write. Every write is ``... WHERE lease_owner = <our token>``, so even a runner that has not
noticed yet cannot clobber the new owner's progress.

Outcome handling (one transaction each, with a ``job_steps`` row and a log line):

* ``Done``: ``state`` saved, ``step_index`` advanced; the last step finishes the job ``succeeded``;
* ``Wait``: the job is parked (still ``running``, holding its resource, no owner) until the wait is
  over, then claimed again at the same step; no attempt is counted;
* ``Retry`` or an exception: one more attempt counted, parked for the backoff delay, or ``failed``
  with ``last_error`` once ``max_attempts`` is reached;
* ``Fail``: ``failed`` at once with the reason in ``last_error``.

Cancellation requested by an operator is honoured at the next step boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, insert

from vpsbridge.http.context import bind_job_id
from vpsbridge.jobs import lease
from vpsbridge.jobs.backoff import backoff_seconds
from vpsbridge.jobs.queue import LogLine, write_log
from vpsbridge.logs import get_logger, scrub
from vpsbridge.store.models import JobStep, utcnow
from vpsbridge.workflows.base import (
    Done,
    Fail,
    LeaseLost,
    Outcome,
    Retry,
    Step,
    StepContext,
    Wait,
    get_workflow,
)

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

LogSink = Callable[[LogLine], None]
STEPS = cast(Table, JobStep.__table__)

log = get_logger(__name__)


@dataclass
class _JobView:
    """What the runner keeps in memory between steps (the row is re-checked on every write)."""

    id: int
    kind: str
    owner: str
    payload: dict[str, Any]
    state: dict[str, Any]
    step_index: int
    attempts: int
    max_attempts: int
    result: dict[str, Any] | None
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class JobRunner:
    def __init__(self, app: AppContext, worker_id: str, sink: LogSink | None = None):
        self.app = app
        self.worker_id = worker_id
        self.sink = sink
        self.settings = app.settings

    @property
    def lease_seconds(self) -> float:
        return self.settings.scaled(self.settings.job_lease_seconds)

    # --- logging --------------------------------------------------------------------------------
    async def log(self, job_id: int | None, step: str | None, message: str, level: str = "info") -> None:
        async with self.app.db.engine.begin() as conn:
            line = await write_log(conn, job_id, message, level=level, step=step)
        self._emit(line)

    def _emit(self, line: LogLine) -> None:
        if self.sink is not None:
            try:
                self.sink(line)
            except Exception as exc:  # a broken terminal must not break the job
                log.warning("job log sink failed", error=str(exc))

    # --- the job --------------------------------------------------------------------------------
    async def run(self, claimed: lease.ClaimedJob, stopping: asyncio.Event) -> None:
        """Run ``claimed`` until it finishes, parks, loses its lease or the worker stops."""
        job = _JobView(
            id=claimed.id,
            kind=claimed.kind,
            owner=claimed.lease_owner,
            payload=claimed.payload,
            state=claimed.state,
            step_index=claimed.step_index,
            attempts=claimed.attempts,
            max_attempts=claimed.max_attempts,
            result=claimed.result,
        )
        cancel_requested = claimed.cancel_requested
        if cancel_requested:
            await self._finish(job, "cancelled", None, "cancelled at a step boundary")
            return
        workflow = get_workflow(job.kind)
        if workflow is None:
            await self._finish(job, "failed", f"no workflow registered for {job.kind!r}", "unknown job kind")
            return
        steps = workflow.steps
        if claimed.resumed and claimed.previous_owner is not None and job.step_index < len(steps):
            # A worker died (or hung) inside this step. That counts as a failed attempt, so a step
            # that kills its worker every time ends in ``failed`` instead of being picked up forever;
            # the usual backoff applies before the next worker resumes it.
            step = steps[job.step_index]
            reason = f"lease of {claimed.previous_owner} expired during step {step.name!r}"
            await self._apply(job, step, Retry(reason), True, utcnow(), last=False)
            return
        while True:
            if job.step_index >= len(steps):  # e.g. reset after the last step completed
                await self._finish(job, "succeeded", None, "all steps completed")
                return
            step = steps[job.step_index]
            started = utcnow()
            outcome, error = await self._run_step(job, step)
            if outcome is None:
                return  # lease lost: the new owner carries on
            keep_going = await self._apply(
                job, step, outcome, error, started, last=job.step_index + 1 == len(steps)
            )
            if not keep_going:
                return
            if stopping.is_set():
                if await lease.release(self.app.db, job.id, job.owner):
                    await self.log(job.id, None, f"worker stopping; released at step {job.step_index}")
                return

    async def _run_step(self, job: _JobView, step: Step) -> tuple[Outcome | None, bool]:
        """Run one step with heartbeats; ``(None, _)`` means the lease was lost."""

        async def write(message: str, level: str) -> None:
            await self.log(job.id, step.name, message, level)

        async def beat() -> None:
            if job.lost.is_set() or not await lease.heartbeat(
                self.app.db, job.id, job.owner, self.lease_seconds
            ):
                job.lost.set()
                raise LeaseLost(f"job {job.id} is no longer leased by {job.owner}")

        context = StepContext(
            job_id=job.id,
            kind=job.kind,
            step=step.name,
            payload=job.payload,
            state=job.state,
            attempt=job.attempts + 1,
            app=self.app,
            _log=write,
            _heartbeat=beat,
        )

        async def call() -> object:
            # Upstream calls made by the step carry the job id into the request log.
            with bind_job_id(job.id):
                return await step.run(context)

        task = asyncio.create_task(call(), name=f"job-{job.id}-{step.name}")
        beats = asyncio.create_task(self._heartbeat_loop(job, task), name=f"job-{job.id}-heartbeat")
        try:
            # Typed loosely on purpose: a step returning something else is a bug reported as Fail.
            outcome: object = await task
        except LeaseLost:
            job.lost.set()
            return None, False
        except asyncio.CancelledError:
            if job.lost.is_set() and not _current_task_cancelling():
                log.warning("lease lost mid-step; leaving the job to its new owner", job_id=job.id)
                return None, False
            # The worker is stopping hard: hand the job back so another worker redoes this step.
            beats.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(lease.release(self.app.db, job.id, job.owner))
            raise
        except Exception as exc:
            log.warning("step raised", job_id=job.id, kind=job.kind, step=step.name, exc_info=exc)
            return Retry(scrub(f"{type(exc).__name__}: {exc}")), True
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await beats
        if job.lost.is_set():
            return None, False
        if not isinstance(outcome, Done | Wait | Retry | Fail):
            return Fail(f"step {step.name!r} returned {outcome!r} instead of Done/Wait/Retry/Fail"), True
        return outcome, False

    async def _heartbeat_loop(self, job: _JobView, task: asyncio.Task[Any]) -> None:
        interval = self.settings.scaled(self.settings.job_heartbeat_seconds)
        while not task.done():
            await asyncio.sleep(interval)
            try:
                ok = await lease.heartbeat(self.app.db, job.id, job.owner, self.lease_seconds)
            except Exception as exc:  # database hiccup: keep trying while the lease lasts
                log.warning("heartbeat failed", job_id=job.id, error=str(exc))
                continue
            if not ok:
                job.lost.set()
                task.cancel()
                return

    # --- persisting outcomes ----------------------------------------------------------------------
    def _plan(
        self, job: _JobView, outcome: Outcome, error: bool, now: dt.datetime, *, last: bool
    ) -> tuple[dict[str, Any], str, str | None, str, bool]:
        """The row update, step label, detail, log message and "go on" flag of an outcome."""
        values: dict[str, Any] = {"state": dict(job.state), "updated_at": now}
        detail: str | None
        keep_going = False
        if isinstance(outcome, Done):
            label = "done"
            detail = None
            if outcome.result:
                job.result = {**(job.result or {}), **outcome.result}
                values["result"] = job.result
            values["step_index"] = job.step_index + 1
            if last:
                values.update(status="succeeded", finished_at=now, lease_owner=None, lease_expires_at=None)
                message = "step done; job succeeded"
            else:
                values["lease_expires_at"] = now + dt.timedelta(seconds=self.lease_seconds)
                message = "step done"
                keep_going = True
        elif isinstance(outcome, Wait):
            label = "wait"
            detail = outcome.reason or None
            wake = now + dt.timedelta(seconds=self.settings.scaled(outcome.seconds))
            values.update(lease_owner=None, lease_expires_at=wake, run_at=wake)
            message = f"waiting {outcome.seconds:g}s" + (f": {outcome.reason}" if outcome.reason else "")
        elif isinstance(outcome, Retry):
            label = "error" if error else "retry"
            detail = outcome.reason
            failures = job.attempts + 1
            values.update(attempts=failures, last_error=outcome.reason)
            if failures >= job.max_attempts:
                values.update(status="failed", finished_at=now, lease_owner=None, lease_expires_at=None)
                message = f"attempt {failures}/{job.max_attempts} failed: {outcome.reason}; giving up"
            else:
                delay = backoff_seconds(self.settings, failures)
                wake = now + dt.timedelta(seconds=delay)
                values.update(lease_owner=None, lease_expires_at=wake, run_at=wake)
                message = (
                    f"attempt {failures}/{job.max_attempts} failed: {outcome.reason}; "
                    f"retrying in {delay:.3g}s"
                )
        else:
            label = "fail"
            detail = outcome.reason
            values.update(
                status="failed",
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
                last_error=outcome.reason,
            )
            message = f"failed: {outcome.reason}"
        return values, label, detail, message, keep_going

    async def _apply(
        self, job: _JobView, step: Step, outcome: Outcome, error: bool, started: dt.datetime, *, last: bool
    ) -> bool:
        """Persist a step outcome; True when the runner should go on with the next step."""
        async with self.app.db.engine.begin() as conn:
            now = await lease.locked_now(conn)
            values, label, detail, message, keep_going = self._plan(job, outcome, error, now, last=last)
            row = (await lease.update_owned(conn, job.id, job.owner, values, returning=True)).first()
            if row is None:
                job.lost.set()
                return False
            await conn.execute(
                insert(STEPS).values(
                    job_id=job.id,
                    index=job.step_index,
                    name=step.name,
                    outcome=label,
                    detail=detail,
                    attempt=job.attempts + 1,
                    worker=self.worker_id,
                    started_at=started,
                    finished_at=now,
                )
            )
            level = "info" if label in ("done", "wait") else ("warning" if label == "retry" else "error")
            lines = [await write_log(conn, job.id, message, level=level, step=step.name)]
            if keep_going and row.cancel_requested:
                cancelled = {
                    "status": "cancelled",
                    "finished_at": now,
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
                await lease.update_owned(conn, job.id, job.owner, cancelled)
                lines.append(await write_log(conn, job.id, "cancelled at a step boundary", level="warning"))
                keep_going = False
        for item in lines:
            self._emit(item)
        if "attempts" in values:
            job.attempts = values["attempts"]
        if isinstance(outcome, Done):
            job.step_index += 1
        return keep_going

    async def _finish(self, job: _JobView, status: str, error: str | None, message: str) -> None:
        """End the job (terminal ``status``) if this worker still owns it."""
        async with self.app.db.engine.begin() as conn:
            now = await lease.locked_now(conn)
            values: dict[str, Any] = {
                "status": status,
                "finished_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
            if error is not None:
                values["last_error"] = error
            result = await lease.update_owned(conn, job.id, job.owner, values)
            if result.rowcount != 1:
                return
            line = await write_log(
                conn, job.id, message + (f": {error}" if error else ""), level="error" if error else "info"
            )
        self._emit(line)


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
