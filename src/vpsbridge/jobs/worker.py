"""The worker: claims due jobs and runs up to ``concurrency`` of them at once on one event loop.

Polling every ``worker_poll_seconds`` is the source of truth; PostgreSQL NOTIFY and Redis pub/sub
only wake an idle worker early. A worker also fires due periodic tasks (queueing their jobs).

Stopping is graceful: no new claims, each running job is handed back at its next step boundary, and
after ``grace_seconds`` the steps still running are cancelled and their jobs released so another
worker redoes that (idempotent) step at once instead of waiting for the lease to expire.

The same class serves ``vpsbridge worker`` (:meth:`run_forever` with signal handlers), the web
process in embedded mode (:meth:`start` / :meth:`stop` as an asyncio task) and tests and the demo
(:meth:`run_until_idle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from typing import TYPE_CHECKING

from vpsbridge.jobs import lease, maintenance
from vpsbridge.jobs.periodic import fire_due
from vpsbridge.jobs.queue import count_pending
from vpsbridge.jobs.runner import JobRunner, LogSink
from vpsbridge.jobs.wakeup import Listener
from vpsbridge.logs import get_logger
from vpsbridge.store.models import utcnow
from vpsbridge.workflows import autodiscover

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

log = get_logger(__name__)

# The engine's own periodic tasks are always known to a worker.
_ = maintenance


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        app: AppContext,
        concurrency: int | None = None,
        worker_id: str | None = None,
        verbose_sink: LogSink | None = None,
        *,
        periodic: bool = True,
        wakeup: bool = True,
        grace_seconds: float | None = None,
    ):
        # Every worker (CLI, embedded in web, demo) must know every workflow module's jobs.
        autodiscover()
        self.app = app
        self.settings = app.settings
        self.concurrency = concurrency or self.settings.worker_concurrency
        self.worker_id = worker_id or default_worker_id()
        self.runner = JobRunner(app, self.worker_id, verbose_sink)
        self.periodic = periodic
        self.wakeup = wakeup
        self.grace_seconds = (
            grace_seconds
            if grace_seconds is not None
            else self.settings.scaled(self.settings.job_lease_seconds)
        )
        self._stopping = asyncio.Event()
        self._kick = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        #: Jobs this worker has claimed since it started (tests and the benchmark read it).
        self.claimed_count = 0

    # --- public control ---------------------------------------------------------------------------
    async def run_forever(self, *, install_signal_handlers: bool = False) -> None:
        """Run until :meth:`request_stop` (or SIGTERM/SIGINT when ``install_signal_handlers``)."""
        if install_signal_handlers:
            self._install_signals()
        await self._loop(until_idle=False)

    async def run_until_idle(self, timeout: float | None = None) -> None:
        """Run until no job is queued or running anywhere (delayed ones included), then return."""
        await asyncio.wait_for(self._loop(until_idle=True), timeout)

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run_forever` as a background task of the current loop (embedded mode)."""
        if self._main is None or self._main.done():
            self._main = asyncio.create_task(self.run_forever(), name=f"worker-{self.worker_id}")
        return self._main

    def request_stop(self) -> None:
        self._stopping.set()
        self._kick.set()

    async def stop(self) -> None:
        """Stop gracefully and wait for the worker started with :meth:`start` to finish."""
        self.request_stop()
        if self._main is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._main

    @property
    def running_jobs(self) -> int:
        return len(self._tasks)

    # --- the loop -------------------------------------------------------------------------------
    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        if self._stopping.is_set():  # second signal: do not wait for steps to finish
            self.grace_seconds = 0
            for task in self._tasks:
                task.cancel()
        log.info("worker stopping", worker=self.worker_id, running=len(self._tasks))
        self.request_stop()

    async def _loop(self, *, until_idle: bool) -> None:
        listener = Listener(self.app, self._kick) if self.wakeup else None
        if listener is not None:
            listener.start()
        poll = self.settings.worker_poll_seconds
        last_periodic = float("-inf")
        log.info("worker started", worker=self.worker_id, concurrency=self.concurrency)
        try:
            while not self._stopping.is_set():
                # Cleared before looking at the queue, so a wake-up arriving meanwhile is kept.
                self._kick.clear()
                if self.periodic and time.monotonic() - last_periodic >= poll:
                    last_periodic = time.monotonic()
                    try:
                        await fire_due(self.app)
                    except Exception as exc:
                        log.warning("periodic tasks not fired", error=str(exc))
                free = self.concurrency - len(self._tasks)
                claimed: list[lease.ClaimedJob] = []
                if free > 0:
                    try:
                        claimed = await lease.claim(
                            self.app.db,
                            self.worker_id,
                            self.settings.scaled(self.settings.job_lease_seconds),
                            free,
                        )
                    except Exception as exc:  # database unavailable: keep polling
                        log.warning("claim failed", error=str(exc))
                for job in claimed:
                    self._spawn(job)
                if claimed and len(claimed) == free:
                    continue  # there may be more due jobs; claim again once a slot frees
                timeout = poll
                if not claimed and not self._tasks:
                    if until_idle and await count_pending(self.app) == 0:
                        return
                    timeout = await self._time_to_next_due(poll)
                if free <= 0 or claimed:
                    timeout = poll
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), timeout)
        finally:
            await self._drain()
            if listener is not None:
                await listener.stop()
            log.info("worker stopped", worker=self.worker_id)

    async def _time_to_next_due(self, poll: float) -> float:
        try:
            due = await lease.next_due(self.app.db)
        except Exception:
            return poll
        if due is None:
            return poll
        return min(poll, max((due - utcnow()).total_seconds() + 0.001, 0.001))

    def _spawn(self, job: lease.ClaimedJob) -> None:
        self.claimed_count += 1
        task = asyncio.create_task(self._run_job(job), name=f"job-{job.id}")
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._kick.set()

        task.add_done_callback(done)

    async def _run_job(self, job: lease.ClaimedJob) -> None:
        try:
            await self.runner.run(job, self._stopping)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database failed under the runner; the lease will expire
            log.error("job runner crashed", job_id=job.id, error=f"{type(exc).__name__}: {exc}")

    async def _drain(self) -> None:
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=self.grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
