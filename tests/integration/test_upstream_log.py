"""The upstream request log on SQLite and PostgreSQL: buffered persistence, redaction, queries, purge."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select

from vpsbridge.config import load_settings
from vpsbridge.http import UpstreamClient, UpstreamNotFound, UpstreamRecord, bind_job_id
from vpsbridge.jobs.periodic import get_task, run_task
from vpsbridge.services.context import AppContext
from vpsbridge.services.upstream_log import (
    UpstreamLog,
    install_upstream_log,
    purge_upstream_log,
    recent,
)
from vpsbridge.store.db import Database
from vpsbridge.store.models import UpstreamRequest, utcnow

TOKEN = "pdns-api-key-0123456789"


async def make_ctx(db: Database, tmp_path: Path, **overrides: object) -> AppContext:
    settings = load_settings(
        database_url=db.url,
        data_dir=tmp_path,
        encryption_keys=[Fernet.generate_key().decode()],
        redis_url="",
        **overrides,
    )
    return await AppContext.create(settings, db=db)


@pytest.fixture
async def ctx(db: Database, tmp_path: Path) -> AsyncIterator[AppContext]:
    app = await make_ctx(db, tmp_path)
    yield app
    upstream_log = app.extras.get("upstream_log")
    if upstream_log is not None:
        await upstream_log.close()
    await app.cache.close()


def handler(request: httpx2.Request) -> httpx2.Response:
    if request.url.path.endswith("/missing"):
        return httpx2.Response(404, json={"error": "Not Found"})
    return httpx2.Response(200, json={"echo": request.url.path, "api_key": TOKEN})


def record(**overrides: object) -> UpstreamRecord:
    values: dict[str, object] = {
        "ts": utcnow(),
        "client": "test:1",
        "method": "GET",
        "url": "https://x.test/",
        "status": 200,
        "duration_ms": 1.5,
        "outcome": "value",
        "request_body": None,
        "response_body": None,
        "error": None,
        "job_id": None,
    }
    values.update(overrides)
    return UpstreamRecord(**values)  # type: ignore[arg-type]


async def test_client_requests_are_persisted_redacted_and_queryable(ctx: AppContext) -> None:
    recorder = install_upstream_log(ctx)
    assert ctx.extras["upstream_recorder"] is recorder
    assert install_upstream_log(ctx) is recorder
    client = UpstreamClient(
        "https://pdns.test/api/v1",
        name="powerdns:1",
        auth_headers={"X-API-Key": TOKEN},
        transport=httpx2.MockTransport(handler),
        recorder=ctx.extras["upstream_recorder"],
    )
    other = UpstreamClient(
        "https://cf.test", name="cloudflare:2", transport=httpx2.MockTransport(handler), recorder=recorder
    )
    async with client, other:
        await client._request("PATCH", "/zones/example.org.", json={"password": "hunter2hunter2"})
        with bind_job_id(77), pytest.raises(UpstreamNotFound):
            await client._request("GET", "/missing")
        await other._request("GET", "/zones")

    rows = await recent(ctx)
    assert [r.client for r in rows] == ["cloudflare:2", "powerdns:1", "powerdns:1"]
    patch = rows[2]
    assert patch.method == "PATCH"
    assert patch.status == 200
    assert patch.outcome == "value"
    assert patch.request_body == '{"password":"***"}'
    assert patch.response_body is not None
    assert TOKEN not in patch.response_body
    assert patch.duration_ms >= 0
    missing = rows[1]
    assert (missing.status, missing.outcome, missing.job_id) == (404, "missing", 77)
    assert missing.error is not None
    assert "Not Found" in missing.error
    assert [r.url for r in await recent(ctx, client="cloudflare:2")] == ["https://cf.test/zones"]
    assert [r.id for r in await recent(ctx, job_id=77)] == [missing.id]
    assert len(await recent(ctx, limit=1)) == 1


async def test_burst_is_written_in_batches_without_blocking(ctx: AppContext) -> None:
    upstream_log = install_upstream_log(ctx)
    for i in range(500):
        upstream_log(record(url=f"https://x.test/{i}"))  # synchronous: returns at once
    assert upstream_log.written < 500  # nothing waited for the database
    await upstream_log.flush()
    assert upstream_log.written == 500
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(UpstreamRequest)) == 500


async def test_bodies_truncated_to_setting(db: Database, tmp_path: Path) -> None:
    app = await make_ctx(db, tmp_path, upstream_log_body_bytes=32)
    upstream_log = install_upstream_log(app)
    upstream_log(record(response_body="y" * 1000, request_body="short"))
    await upstream_log.close()
    (row,) = await recent(app)
    assert row.request_body == "short"
    assert row.response_body is not None
    assert row.response_body.startswith("y" * 32)
    assert "truncated 968 bytes" in row.response_body
    upstream_log(record())  # after close: ignored, never raises
    await app.cache.close()


async def test_retention_zero_keeps_nothing(db: Database, tmp_path: Path) -> None:
    async with db.session() as session:
        await session.execute(insert(UpstreamRequest), [{**_row(), "ts": utcnow()}])
    app = await make_ctx(db, tmp_path, upstream_log_retention_days=0)
    upstream_log = install_upstream_log(app)
    assert not upstream_log.enabled
    upstream_log(record())
    await upstream_log.flush()
    lines: list[str] = []

    async def sink(message: str, level: str = "info") -> None:
        lines.append(message)

    result = await purge_upstream_log(app, sink)
    assert result.processed == 1
    assert await recent(app) == []
    assert "nothing is kept" in lines[0]
    await app.cache.close()


def _row() -> dict[str, object]:
    return {
        "client": "old:1",
        "method": "GET",
        "url": "https://x.test/",
        "status": 200,
        "duration_ms": 1.0,
        "outcome": "value",
    }


async def test_purge_deletes_only_rows_older_than_retention(ctx: AppContext) -> None:
    now = utcnow()
    async with ctx.db.session() as session:
        await session.execute(
            insert(UpstreamRequest),
            [
                {**_row(), "ts": now - dt.timedelta(days=30)},
                {**_row(), "ts": now - dt.timedelta(days=15)},
                {**_row(), "ts": now - dt.timedelta(days=13)},
                {**_row(), "ts": now},
            ],
        )
    assert get_task("upstream_log_purge") is not None
    result = await run_task(ctx, "upstream_log_purge", force=True)
    assert result is not None
    assert result.processed == 2
    assert result.errors == 0
    assert result.details["days"] == 14
    remaining = await recent(ctx)
    assert len(remaining) == 2
    assert all(now - r.ts < dt.timedelta(days=14) for r in remaining)


async def test_database_down_drops_batch_and_never_raises() -> None:
    broken = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    upstream_log = UpstreamLog(broken)
    try:
        for _ in range(3):
            upstream_log(record())
        await upstream_log.flush()
        assert upstream_log.dropped == 3
        assert upstream_log.written == 0
    finally:
        await upstream_log.close()
        await broken.dispose()


async def test_full_queue_drops_instead_of_growing(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}")
    upstream_log = UpstreamLog(db, max_queue=5)
    try:
        for _ in range(20):
            upstream_log(record())
        assert upstream_log.dropped >= 14
    finally:
        upstream_log.enabled = False
        await upstream_log.close()
        await db.dispose()


def test_recording_outside_an_event_loop_is_ignored(tmp_path: Path) -> None:
    upstream_log = UpstreamLog(Database(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}"))
    upstream_log(record())
    assert upstream_log.dropped == 1
