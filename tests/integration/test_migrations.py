"""The shipped Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from vpsbridge.store.db import Database
from vpsbridge.store.migrate import current_revision, head_revision, upgrade
from vpsbridge.store.models import Base


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables at all), on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
        return
    url = request.getfixturevalue("pg_url")
    asyncio.run(_empty_public_schema(url))
    yield url
    asyncio.run(_empty_public_schema(url))


async def _empty_public_schema(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await db.dispose()


async def _schema_diff(url: str) -> list[Any]:
    def diff(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(diff)
    finally:
        await db.dispose()


async def _partial_indexes(url: str) -> dict[str, str]:
    """Name -> WHERE clause of every partial index on ``jobs`` (reflection ignores the predicate)."""
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            if db.is_sqlite:
                rows = await conn.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='jobs'")
                )
            else:
                rows = await conn.execute(
                    text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename='jobs'")
                )
            return {name: sql.split(" WHERE ", 1)[1] for name, sql in rows.all() if sql and " WHERE " in sql}
    finally:
        await db.dispose()


async def test_upgrade_builds_the_model_schema(empty_url: str) -> None:
    assert await current_revision(empty_url) is None
    await upgrade(empty_url)
    assert await current_revision(empty_url) == head_revision()
    assert await _schema_diff(empty_url) == []

    partial = await _partial_indexes(empty_url)
    assert set(partial) == {"uq_jobs_waiting_dedupe", "uq_jobs_running_resource"}
    assert "queued" in partial["uq_jobs_waiting_dedupe"]
    assert "running" in partial["uq_jobs_running_resource"]


async def test_upgrade_twice_is_a_no_op(empty_url: str) -> None:
    await upgrade(empty_url)
    db = Database(empty_url)
    try:
        async with db.engine.begin() as conn:
            # Timestamps left to the server defaults the migration created.
            await conn.execute(text("INSERT INTO periodic_tasks (name) VALUES ('x')"))
    finally:
        await db.dispose()
    await upgrade(empty_url)
    assert await current_revision(empty_url) == head_revision()

    db = Database(empty_url)
    try:
        async with db.engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM periodic_tasks"))).scalar_one()
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await db.dispose()
    assert count == 1  # data kept: nothing was recreated
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_migrations_ship_inside_the_package() -> None:
    from vpsbridge.store import migrate

    assert (migrate.MIGRATIONS_DIR / "env.py").is_file()
    assert migrate.MIGRATIONS_DIR.is_relative_to(Path(migrate.__file__).parent)
    # One linear history: every revision file is on the path to the single head.
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrate.MIGRATIONS_DIR))
    assert script.get_heads() == [head_revision()]
    files = {p.name.split("_", 1)[0] for p in (migrate.MIGRATIONS_DIR / "versions").glob("*.py")}
    chain = {rev.revision for rev in script.walk_revisions()}
    assert chain == files


async def test_concurrent_upgrades_do_not_collide(empty_url: str) -> None:
    """Several processes starting at once: one migrates, the others find the schema at head."""
    await asyncio.wait_for(asyncio.gather(*(upgrade(empty_url) for _ in range(3))), timeout=60)
    assert await current_revision(empty_url) == head_revision()
    assert await _schema_diff(empty_url) == []
