"""Early wake-up: an idle worker polling every 5 s claims a new job within a fraction of a second
through PostgreSQL NOTIFY or Redis pub/sub, and keeps working by polling when Redis is down."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from jobs_support.helpers import key, make_settings, record_file
from jobs_support.workflows import read_records

from vpsbridge.jobs import queue
from vpsbridge.jobs.worker import Worker
from vpsbridge.services.context import AppContext

__all__ = ["key", "record_file"]


async def _started(app: AppContext, worker: Worker) -> asyncio.Task[None]:
    task = worker.start()
    await asyncio.sleep(0.8)  # first poll done, LISTEN / SUBSCRIBE in place, now idle for 5 s
    return task


async def _claim_delay(app: AppContext, record_file: Path) -> float:
    enqueued = time.time()
    await queue.enqueue(app, "t.three", {})
    for _ in range(400):
        records = read_records(record_file)
        if records:
            return records[0][4] - enqueued
        await asyncio.sleep(0.01)
    raise AssertionError("job not run")


@pytest.fixture
async def slow_poll_app(
    db_url: str, tmp_path: Path, key: str, record_file: Path, request: pytest.FixtureRequest
) -> AsyncIterator[AppContext]:
    redis = request.getfixturevalue("redis_url") if db_url.startswith("sqlite") else None
    settings = make_settings(db_url, tmp_path, key, poll=5.0)
    settings.redis_url = redis
    app = await AppContext.create(settings)
    yield app
    await app.close()


async def test_idle_worker_wakes_up_on_enqueue(slow_poll_app: AppContext, record_file: Path) -> None:
    """PostgreSQL: LISTEN/NOTIFY. SQLite: Redis pub/sub (the only channel a SQLite setup can use)."""
    worker = Worker(slow_poll_app, concurrency=2, worker_id="w", periodic=False)
    await _started(slow_poll_app, worker)
    try:
        delay = await _claim_delay(slow_poll_app, record_file)
    finally:
        await worker.stop()
    assert delay < 1.0, f"claimed after {delay:.2f}s: the worker waited for its 5 s poll"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_redis_down_falls_back_to_polling(
    db_url: str, tmp_path: Path, key: str, record_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(db_url, tmp_path, key, poll=0.1)
    settings.redis_url = f"redis://127.0.0.1:{_closed_port()}/0"
    app = await AppContext.create(settings)
    try:
        job_id = await queue.enqueue(app, "t.three", {})  # publishing fails quietly
        await Worker(app, concurrency=2, worker_id="w", periodic=False).run_until_idle(timeout=20)
        job = await queue.get_job(app, job_id)
        assert job is not None
        assert job.status == "succeeded"
    finally:
        await app.close()
    assert len(read_records(record_file)) == 3
