"""The job engine in one process, on SQLite and PostgreSQL: outcomes, retries, dedupe, operator actions,
logs and lease loss. Multi-process guarantees are in test_jobs_multiprocess.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from pathlib import Path

import pytest
from jobs_support.helpers import app, jobs_by_id, key, record_file
from jobs_support.workflows import read_records
from sqlalchemy import func, select, update

from vpsbridge.jobs import queue
from vpsbridge.jobs.queue import JobError, LogLine
from vpsbridge.jobs.worker import Worker
from vpsbridge.logs import register_secret_values
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.store.models import AuditLog, Job, JobStep, utcnow

__all__ = ["app", "key", "record_file"]

OPERATOR = Actor(type="admin", id="alice")


def worker(app: AppContext, **kwargs: object) -> Worker:
    return Worker(app, concurrency=4, worker_id="w1", periodic=False, **kwargs)  # type: ignore[arg-type]


async def steps_of(app: AppContext, job_id: int) -> list[tuple[str, str]]:
    async with app.db.session() as session:
        rows = (
            await session.scalars(select(JobStep).where(JobStep.job_id == job_id).order_by(JobStep.id))
        ).all()
    return [(r.name, r.outcome) for r in rows]


async def test_steps_run_in_order_and_state_is_persisted(app: AppContext, record_file: Path) -> None:
    job_id = await queue.enqueue(app, "t.three", {"n": 1})
    await worker(app).run_until_idle(timeout=30)
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert job.status == "succeeded"
    assert job.step_index == 3
    assert job.state == {"a": 1, "b": 1, "c": 1}
    assert job.lease_owner is None
    assert job.finished_at is not None
    assert await steps_of(app, job_id) == [("a", "done"), ("b", "done"), ("c", "done")]
    assert [r[1] for r in read_records(record_file)] == ["a", "b", "c"]


async def test_dedupe_key_holds_under_concurrent_enqueue(app: AppContext) -> None:
    ids = await asyncio.gather(
        *(queue.enqueue(app, "t.three", {"i": i}, dedupe_key="dns:zone-1") for i in range(20))
    )
    assert len(set(ids)) == 1
    async with app.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(Job).where(Job.dedupe_key == "dns:zone-1")
        )
    assert count == 1
    # A running job no longer blocks the key: work arriving meanwhile gets its own queued job.
    async with app.db.session() as session:
        await session.execute(update(Job).where(Job.id == ids[0]).values(status="running"))
    again = await queue.enqueue(app, "t.three", {}, dedupe_key="dns:zone-1")
    assert again != ids[0]
    assert await queue.enqueue(app, "t.three", {}, dedupe_key="dns:zone-1") == again


async def test_enqueue_joins_the_callers_transaction(app: AppContext) -> None:
    async def change_that_fails() -> None:
        async with app.db.session() as session:
            await queue.enqueue(session, "t.three", {})
            raise RuntimeError("the surrounding change failed")

    with pytest.raises(RuntimeError):
        await change_that_fails()
    assert await queue.list_jobs(app) == []


async def test_retries_back_off_and_end_failed_with_reason(app: AppContext, record_file: Path) -> None:
    # backoff base 10 s * time_scale 0.01 = 0.1 s, then 0.2 s and 0.4 s (jitter only shortens by <= 25 %)
    app.settings.job_backoff_base_seconds = 10
    job_id = await queue.enqueue(app, "t.flaky", {})
    await worker(app).run_until_idle(timeout=30)
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert job.status == "failed"
    assert job.attempts == 4 == job.max_attempts
    assert job.last_error == "upstream said no (attempt 4)"
    times = [r[4] for r in read_records(record_file)]
    assert [r[2] for r in read_records(record_file)] == ["attempt1", "attempt2", "attempt3", "attempt4"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.075
    assert gaps[1] > gaps[0] * 1.3
    assert gaps[2] > gaps[1] * 1.3
    assert await steps_of(app, job_id) == [("flaky", "retry")] * 3 + [("flaky", "retry")]


async def test_exception_counts_as_retry_then_recovers(app: AppContext) -> None:
    job_id = await queue.enqueue(app, "t.boom", {})
    await worker(app).run_until_idle(timeout=30)
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert job.status == "succeeded"
    assert job.result == {"recovered_on": 2}
    assert await steps_of(app, job_id) == [("boom", "error"), ("boom", "done")]
    lines = await queue.job_log(app, job_id)
    assert any("RuntimeError: connection reset" in line.message for line in lines), [
        line.message for line in lines
    ]


async def test_fail_is_terminal_at_once(app: AppContext, record_file: Path) -> None:
    job_id = await queue.enqueue(app, "t.fail", {})
    await worker(app).run_until_idle(timeout=30)
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert (job.status, job.last_error, job.attempts, job.step_index) == (
        "failed",
        "plan does not exist",
        0,
        1,
    )
    assert [r[1] for r in read_records(record_file)] == ["a", "fail"]


async def test_wait_requeues_the_same_step_without_counting_attempts(app: AppContext) -> None:
    job_id = await queue.enqueue(app, "t.wait", {"wait": 5})
    await worker(app).run_until_idle(timeout=30)
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert job.status == "succeeded"  # max_attempts is 1, so a counted Wait would have failed it
    assert job.attempts == 0
    assert job.result == {"polls": 3}
    assert await steps_of(app, job_id) == [("poll", "wait"), ("poll", "wait"), ("poll", "done")]


async def test_cancel_queued_job_at_once(app: AppContext) -> None:
    job_id = await queue.enqueue(app, "t.three", {})
    assert await queue.cancel(app, job_id, OPERATOR) == "cancelled"
    await worker(app).run_until_idle(timeout=10)
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert job.status == "cancelled"
    assert job.step_index == 0
    with pytest.raises(JobError, match="already cancelled"):
        await queue.cancel(app, job_id, OPERATOR)
    async with app.db.session() as session:
        actions = (await session.scalars(select(AuditLog.action))).all()
    assert actions == ["job.cancel"]


async def test_cancel_running_job_stops_at_next_step_boundary(app: AppContext, record_file: Path) -> None:
    job_id = await queue.enqueue(app, "t.long", {"sleep": 0.4})
    w = worker(app)
    run = asyncio.create_task(w.run_until_idle(timeout=30))
    for _ in range(500):
        if read_records(record_file):
            break
        await asyncio.sleep(0.01)
    assert await queue.cancel(app, job_id, OPERATOR) == "running"
    await run
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert job.status == "cancelled"
    assert job.step_index == 1  # the running step completed and was kept
    assert [r[1] for r in read_records(record_file)] == ["first"]


async def test_reset_retry_restart_and_done(app: AppContext, record_file: Path) -> None:
    job_id = await queue.enqueue(app, "t.fail", {})
    await worker(app).run_until_idle(timeout=30)
    with pytest.raises(JobError):
        await queue.reset(app, job_id, OPERATOR, mode="sideways")

    assert await queue.reset(app, job_id, OPERATOR, mode="retry") == "queued"
    await worker(app).run_until_idle(timeout=30)
    # Retried from the failed step: "a" did not run again.
    assert [r[1] for r in read_records(record_file)] == ["a", "fail", "fail"]

    assert await queue.reset(app, job_id, OPERATOR, mode="restart") == "queued"
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert job.step_index == 0
    assert job.state == {}
    await worker(app).run_until_idle(timeout=30)
    assert [r[1] for r in read_records(record_file)] == ["a", "fail", "fail", "a", "fail"]

    assert await queue.reset(app, job_id, OPERATOR, mode="done") == "succeeded"
    with pytest.raises(JobError, match="only failed or cancelled"):
        await queue.reset(app, job_id, OPERATOR)
    async with app.db.session() as session:
        actions = (await session.scalars(select(AuditLog.action).order_by(AuditLog.id))).all()
    assert actions == ["job.reset"] * 3


async def test_log_lines_are_persisted_in_order_and_streamed(app: AppContext) -> None:
    streamed: list[LogLine] = []
    job_id = await queue.enqueue(app, "t.chatty", {"lines": 4})
    await worker(app, verbose_sink=streamed.append).run_until_idle(timeout=30)
    lines = await queue.job_log(app, job_id)
    step_lines = [(line.step, line.message) for line in lines if line.message.startswith("line")]
    assert step_lines == [("talk", f"line {i}") for i in range(4)] + [("more", f"line {i}") for i in range(4)]
    assert [line.id for line in lines] == sorted(line.id for line in lines)
    assert [line.ts for line in lines] == sorted(line.ts for line in lines)
    assert [line.level for line in lines][:4] == ["info", "debug", "info", "debug"]
    assert [line.id for line in streamed] == [line.id for line in lines]
    tail = await queue.job_log(app, job_id, after_id=lines[5].id)
    assert [line.id for line in tail] == [line.id for line in lines[6:]]
    assert f"job {job_id} [talk]: line 0" in lines[0].format()


async def test_worker_that_lost_its_lease_stops_touching_the_job(app: AppContext, record_file: Path) -> None:
    job_id = await queue.enqueue(app, "t.long", {"sleep": 1.0})
    w = worker(app)
    run = asyncio.create_task(w.run_until_idle(timeout=30))
    for _ in range(500):
        if read_records(record_file):
            break
        await asyncio.sleep(0.01)
    # Another worker took the job over (as after a long stall of this one).
    async with app.db.session() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_owner="someone-else/1", lease_expires_at=utcnow() + dt.timedelta(seconds=60))
        )
    await asyncio.sleep(0.5)  # > heartbeat interval (0.15 s)
    assert w.running_jobs == 0  # the step was abandoned on the failed heartbeat
    job = (await jobs_by_id(app))[job_id]
    assert (job.lease_owner, job.step_index, job.status) == ("someone-else/1", 0, "running")
    assert await steps_of(app, job_id) == []
    w.request_stop()
    await run


async def test_unknown_kind_fails_with_a_clear_reason(app: AppContext) -> None:
    job_id = await queue.enqueue(app, "no.such.workflow", {})
    await worker(app).run_until_idle(timeout=10)
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert job.status == "failed"
    assert "no workflow registered" in (job.last_error or "")


async def test_list_jobs_filters(app: AppContext) -> None:
    a = await queue.enqueue(app, "t.three", {})
    b = await queue.enqueue(app, "t.fail", {})
    await queue.cancel(app, a, OPERATOR)
    assert [j.id for j in await queue.list_jobs(app)] == [b, a]
    assert [j.id for j in await queue.list_jobs(app, status="cancelled")] == [a]
    assert [j.id for j in await queue.list_jobs(app, kind="t.fail")] == [b]
    assert [j.id for j in await queue.list_jobs(app, status=["queued", "cancelled"])] == [b, a]


async def test_cancel_parked_job_ends_it_at_once_and_frees_its_resource(app: AppContext) -> None:
    job_id = await queue.enqueue(app, "t.wait", {"wait": 6000}, resource_key="server:5")  # 60 s wait
    w = worker(app)
    run = asyncio.create_task(w.run_forever())
    for _ in range(300):
        job = await queue.get_job(app, job_id)
        assert job is not None
        if queue.display_status(job) == "waiting":
            break
        await asyncio.sleep(0.01)
    assert (job.status, job.resource_key) == ("running", "server:5")  # parked, still holding the server
    assert await queue.cancel(app, job_id, OPERATOR) == "cancelled"
    other = await queue.enqueue(app, "t.three", {}, resource_key="server:5")
    for _ in range(300):
        done = await queue.get_job(app, other)
        if done is not None and done.status == "succeeded":
            break
        await asyncio.sleep(0.01)
    w.request_stop()
    await run
    assert done is not None
    assert done.status == "succeeded"


async def test_heartbeats_keep_a_long_step_from_being_taken_over(app: AppContext, record_file: Path) -> None:
    # A 1.5 s step under a 0.6 s lease, with a second worker polling for expired leases meanwhile.
    await queue.enqueue(app, "t.long", {"sleep": 1.5})
    first, second = worker(app), Worker(app, concurrency=2, worker_id="w2", periodic=False)
    await asyncio.gather(first.run_until_idle(timeout=30), second.run_until_idle(timeout=30))
    assert [r[1] for r in read_records(record_file)] == ["first", "second"]
    jobs = await jobs_by_id(app)
    assert [j.status for j in jobs.values()] == ["succeeded"]


async def test_one_worker_runs_many_jobs_at_once(app: AppContext) -> None:
    for _ in range(8):
        await queue.enqueue(app, "t.long", {"sleep": 0.4})
    started = asyncio.get_running_loop().time()
    await Worker(app, concurrency=8, worker_id="w", periodic=False).run_until_idle(timeout=30)
    elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < 3 * 2 * 0.4  # run one after another, 8 jobs of two 0.4 s steps take 6.4 s
    assert {j.status for j in (await jobs_by_id(app)).values()} == {"succeeded"}


async def test_known_secrets_never_reach_the_job_log_or_last_error(app: AppContext) -> None:
    secret = "tok-" + "9f8e7d6c5b4a"
    register_secret_values([secret])
    job_id = await queue.enqueue(app, "t.echo", {"text": f"Bearer {secret}"})
    await worker(app).run_until_idle(timeout=30)
    job = await queue.get_job(app, job_id)
    assert job is not None
    assert job.status == "succeeded"
    lines = [line.message for line in await queue.job_log(app, job_id)]
    assert any("upstream said: Bearer [redacted]" in m for m in lines)
    assert any("RuntimeError: 401 for Bearer [redacted]" in m for m in lines)
    assert not any(secret in m for m in lines)
    async with app.db.session() as session:
        details = (await session.scalars(select(JobStep.detail).where(JobStep.job_id == job_id))).all()
    assert details[0] == "RuntimeError: 401 for Bearer [redacted]"


async def test_stop_past_the_grace_period_releases_the_job_at_once(
    app: AppContext, record_file: Path
) -> None:
    job_id = await queue.enqueue(app, "t.long", {"sleep": 30})
    w = Worker(app, concurrency=1, worker_id="w", periodic=False, grace_seconds=0.2)
    w.start()
    for _ in range(500):
        if read_records(record_file):
            break
        await asyncio.sleep(0.01)
    started = asyncio.get_running_loop().time()
    await w.stop()
    assert asyncio.get_running_loop().time() - started < 2
    job = await queue.get_job(app, job_id)
    assert job is not None
    # Handed back without waiting for the lease: no owner, due now, the interrupted step not recorded.
    assert (job.status, job.lease_owner, job.step_index) == ("running", None, 0)
    assert job.lease_expires_at is not None
    assert job.lease_expires_at <= utcnow()
    assert await steps_of(app, job_id) == []
