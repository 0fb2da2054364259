"""A SQLite transaction that holds the write lock too long is reported with its owner, because on
SQLite every other writer (workers, web requests, the upstream log) waits for it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from vpsbridge.store import db as db_module
from vpsbridge.store.db import Database


async def _hold_lock(database: Database, seconds: float) -> None:
    async with database.session() as session:
        await session.execute(text("SELECT 1"))
        await asyncio.sleep(seconds)


async def test_slow_sqlite_transaction_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "SLOW_WRITE_LOCK_SECONDS", 0.2)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        with caplog.at_level(logging.WARNING, logger="vpsbridge.store"):
            await _hold_lock(database, 0.01)
            assert not caplog.records
            await _hold_lock(database, 0.3)
    finally:
        await database.dispose()
    [record] = caplog.records
    assert "write lock held for 0.3 s" in record.getMessage()
    assert "_hold_lock" in record.getMessage()


async def test_read_transactions_do_not_queue_behind_a_writer(db_url: str) -> None:
    """A page view's read runs while a writer holds SQLite's write lock, and sees committed data only."""
    from vpsbridge.store.models import Admin

    database = Database(db_url)
    try:
        async with database.session() as session:
            session.add(Admin(username="committed", password_hash="x"))
        writer_has_lock = asyncio.Event()
        release = asyncio.Event()

        async def writer() -> None:
            async with database.session() as session:
                session.add(Admin(username="uncommitted", password_hash="x"))
                await session.flush()
                writer_has_lock.set()
                await release.wait()

        task = asyncio.create_task(writer())
        await writer_has_lock.wait()
        try:
            async with asyncio.timeout(2):  # far below the 15 s busy timeout a queued writer would wait
                async with database.read() as session:
                    names = set((await session.scalars(text("SELECT username FROM admins"))).all())
        finally:
            release.set()
            await task
        assert names == {"committed"}
    finally:
        await database.dispose()
