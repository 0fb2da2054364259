"""Shared fixtures: databases on both backends, the strict-skip rule, real services.

Strict mode (``VPSBRIDGE_TEST_STRICT=1``, set by ``.ci/run``) turns every "skipped because a binary,
a service or ../shared is missing" into a failure, so CI can never go green by skipping. Tests ask
for such things through :func:`require`, never through a bare ``pytest.skip``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from vpsbridge.store.db import Database
from vpsbridge.store.models import Base

STRICT = os.environ.get("VPSBRIDGE_TEST_STRICT", "") not in ("", "0", "false")
REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VPSBRIDGE_SHARED", REPO.parent / "shared"))
PG_ADMIN_URL = os.environ.get("VPSBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("VPSBRIDGE_TEST_REDIS", "redis://127.0.0.1:6379/15")


def require(condition: bool, reason: str) -> None:
    """Skip (or, in strict mode, fail) when something the test needs is absent."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"strict mode: required but missing: {reason}")
    pytest.skip(reason)


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def require_shared(relative: str) -> Path:
    path = SHARED / relative
    require(path.exists(), f"../shared/{relative} is not present")
    return path


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# --- PostgreSQL: one throw-away database per test session -------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database for this test session (dropped at the end)."""
    require(_port_open("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
    import asyncpg

    name = f"vpsbridge_test_{uuid.uuid4().hex[:10]}"
    admin = PG_ADMIN_URL

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with the full schema, on SQLite and on PostgreSQL (tests run once for each)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        asyncio.run(_reset_schema(url))
        yield url
    else:
        url = request.getfixturevalue("pg_url")
        asyncio.run(_reset_schema(url))
        yield url


async def _reset_schema(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
    finally:
        await db.dispose()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


# --- Redis --------------------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database (number 15) flushed before and after the test."""
    require(_port_open("127.0.0.1", 6379), "Redis is not running on 127.0.0.1:6379")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()
