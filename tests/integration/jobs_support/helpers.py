"""Fixtures and helpers shared by the job-engine tests: an AppContext on the test database with short
engine delays, and worker subprocesses running the test workflows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from vpsbridge.config import load_settings
from vpsbridge.services.context import AppContext
from vpsbridge.store.models import Job

from . import workflows

RUNNER = Path(__file__).resolve().parent / "run_worker.py"

#: Engine settings of every test: 0.6 s leases, 0.15 s heartbeats, 20 ms backoff base.
FAST = {"time_scale": 0.01, "lease": 60, "heartbeat": 15, "poll": 0.05, "backoff": 2}


@pytest.fixture
def record_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "record.txt"
    monkeypatch.setenv(workflows.RECORD_ENV, str(path))
    return path


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


def make_settings(db_url: str, data_dir: Path, key: str, **extra: Any) -> Any:
    options = {**FAST, **extra}
    return load_settings(
        database_url=db_url,
        data_dir=data_dir,
        encryption_keys=[key],
        time_scale=options["time_scale"],
        job_lease_seconds=options["lease"],
        job_heartbeat_seconds=options["heartbeat"],
        worker_poll_seconds=options["poll"],
        job_backoff_base_seconds=options["backoff"],
        task_intervals=options.get("intervals", {}),
    )


@pytest.fixture
async def app(db_url: str, tmp_path: Path, key: str, record_file: Path) -> AsyncIterator[AppContext]:
    context = await AppContext.create(make_settings(db_url, tmp_path, key))
    yield context
    await context.close()


@pytest.fixture
def spawn(
    db_url: str, tmp_path: Path, key: str, record_file: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start worker subprocesses; every one still alive at the end is killed."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(**options: Any) -> subprocess.Popen[bytes]:
        merged = {"database_url": db_url, "data_dir": str(tmp_path), "key": key, **FAST, **options}
        env = {**os.environ, workflows.RECORD_ENV: str(record_file)}
        proc = subprocess.Popen([sys.executable, str(RUNNER), json.dumps(merged)], env=env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def only_tasks(**intervals: int) -> dict[str, int]:
    """Task intervals that disable every registered periodic task except the ones given.

    Other modules (the upstream request log, capability workflows) register their own tasks; a test
    about one task must not see the others fire.
    """
    from vpsbridge.jobs import maintenance
    from vpsbridge.jobs.periodic import registered_tasks
    from vpsbridge.workflows import autodiscover

    del maintenance
    autodiscover()  # what a worker process registers
    return {name: 0 for name in registered_tasks()} | intervals


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


async def jobs_by_id(app: AppContext) -> dict[int, Job]:
    async with app.db.session() as session:
        return {j.id: j for j in (await session.scalars(select(Job))).all()}
