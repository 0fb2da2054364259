"""The job commands end to end: ``worker --verbose`` and ``cron`` as real processes (lines must arrive
while they run, not at exit), ``jobs list|show|log|cancel|reset`` through the Typer app."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from jobs_support.helpers import only_tasks
from typer.testing import CliRunner

from vpsbridge.cli.main import app as cli
from vpsbridge.jobs import queue
from vpsbridge.store.db import Database


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "VPSBRIDGE_DATABASE_URL": db_url,
        "VPSBRIDGE_DATA_DIR": str(tmp_path),
        "VPSBRIDGE_ENCRYPTION_KEYS": json.dumps([Fernet.generate_key().decode()]),
        "VPSBRIDGE_TIME_SCALE": "0.01",
        "VPSBRIDGE_WORKER_POLL_SECONDS": "0.05",
        "VPSBRIDGE_LOG_LEVEL": "warning",
        "COLUMNS": "200",  # rich tables wrap at 80 columns when stdout is not a terminal
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    return {**os.environ, **values}


def enqueue(db_url: str, kind: str, **kwargs: object) -> int:
    async def run() -> int:
        db = Database(db_url)
        try:
            return await queue.enqueue(db, kind, {}, **kwargs)  # type: ignore[arg-type]
        finally:
            await db.dispose()

    return asyncio.run(run())


def vpsbridge(*args: str) -> list[str]:
    return [sys.executable, "-c", "from vpsbridge.cli.main import main; main()", *args]


def test_worker_verbose_streams_lines_while_running(env: dict[str, str], db_url: str) -> None:
    job_id = enqueue(db_url, "periodic:job_log_purge")
    proc = subprocess.Popen(
        vpsbridge("worker", "--verbose", "--concurrency", "2"),
        env={**env, "VPSBRIDGE_TASK_INTERVALS": json.dumps(only_tasks())},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # arrives while the worker is still running
            seen.append(line.rstrip("\n"))
            if f"job {job_id} [run]: step done; job succeeded" in line:
                break
        assert proc.poll() is None, "worker exited instead of streaming"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert any(f"job {job_id} [run]: deleted 0 log lines" in line for line in seen), seen
    assert seen[-1].endswith(f"job {job_id} [run]: step done; job succeeded"), seen
    assert seen[0][:4].isdigit()
    assert "T" in seen[0].split()[0]


def test_cron_list_run_and_unknown_task(env: dict[str, str]) -> None:
    listed = subprocess.run(vpsbridge("cron", "--list", "--json"), env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    tasks = {t["name"]: t for t in json.loads(listed.stdout)}
    assert tasks["job_log_purge"]["enabled"] is True
    assert tasks["job_log_purge"]["interval_seconds"] == 36.0  # 3600 s * time_scale 0.01

    ran = subprocess.run(
        vpsbridge("cron", "--task", "job_log_purge"), env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert "task [job_log_purge]: deleted 0 log lines" in lines[0]
    assert lines[1].startswith("job_log_purge: processed=0 errors=0 details=")

    again = subprocess.run(
        vpsbridge("cron", "--task", "job_log_purge"), env=env, capture_output=True, text=True
    )
    assert "not due" in again.stdout
    forced = subprocess.run(
        vpsbridge("cron", "--task", "job_log_purge", "--force"), env=env, capture_output=True, text=True
    )
    assert "processed=0" in forced.stdout

    table = subprocess.run(vpsbridge("cron", "--list"), env=env, capture_output=True, text=True)
    assert "job_log_purge" in table.stdout
    assert "processed=0 errors=0" in table.stdout

    unknown = subprocess.run(vpsbridge("cron", "--task", "nope"), env=env, capture_output=True, text=True)
    assert unknown.returncode == 2
    assert "unknown task 'nope'" in unknown.stderr


def test_jobs_list_show_log_cancel_reset(env: dict[str, str], db_url: str) -> None:
    runner = CliRunner()
    first = enqueue(db_url, "t.cli", resource_key="server:9")
    second = enqueue(db_url, "t.cli", dedupe_key="zone:1")

    listed = runner.invoke(cli, ["jobs", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [second, first]
    assert rows[1]["resource_key"] == "server:9"
    assert rows[0]["status"] == "queued"

    cancelled = runner.invoke(cli, ["jobs", "cancel", str(first)])
    assert cancelled.exit_code == 0
    assert f"job {first} cancelled" in cancelled.output
    assert runner.invoke(cli, ["jobs", "cancel", str(first)]).exit_code == 1

    log = runner.invoke(cli, ["jobs", "log", str(first)])
    assert log.exit_code == 0
    assert f"job {first} WARNING: cancelled by operator (cli:" in log.output

    reset = runner.invoke(cli, ["jobs", "reset", str(first), "--mode", "done"])
    assert reset.exit_code == 0
    assert "now succeeded" in reset.output
    assert runner.invoke(cli, ["jobs", "reset", str(first)]).exit_code == 1

    shown = runner.invoke(cli, ["jobs", "show", str(first), "--json"])
    assert shown.exit_code == 0
    data = json.loads(shown.stdout)
    assert (data["status"], data["kind"], data["steps"]) == ("succeeded", "t.cli", [])

    only_queued = json.loads(runner.invoke(cli, ["jobs", "list", "--json", "--status", "queued"]).stdout)
    assert [r["id"] for r in only_queued] == [second]
    assert runner.invoke(cli, ["jobs", "show", "999"]).exit_code == 1
    human = runner.invoke(cli, ["jobs", "list"])
    assert "t.cli" in human.output
