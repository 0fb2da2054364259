"""Bringing a database schema up to date, without an ``alembic.ini`` on disk.

The Alembic scripts live inside the package (``vpsbridge/store/migrations``), and the Alembic
``Config`` is built in code, so ``vpsbridge migrate`` works the same from a git checkout and from an
installed wheel. Migrations run on the same kind of engine the application uses, in one transaction
(PostgreSQL rolls a failed migration back entirely; SQLite takes its write lock up front), and
concurrent starts are serialised: an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from vpsbridge.store.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: How long a SQLite process waits for another one's migration before giving up (ms).
MIGRATION_BUSY_TIMEOUT_MS = 300_000

#: PostgreSQL advisory lock id held while migrating (any constant unique to vpsbridge).
_LOCK_KEY = 0x7670_7362_6D69_67  # "vpsbmig"


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    """The newest revision this version of vpsbridge ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply every pending migration; a database already at ``revision`` is left untouched."""
    cfg = alembic_config(database_url)

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Web and worker processes on several machines may start together; the first one
            # migrates, the others wait here and then find the database already at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with _sqlite_file_lock(database_url):
        # On SQLite a process that starts while another migrates waits for the whole migration,
        # which on a slow disk can outlast the usual busy timeout.
        db = Database(database_url, busy_timeout_ms=MIGRATION_BUSY_TIMEOUT_MS)
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(run)
        finally:
            await db.dispose()


@contextlib.asynccontextmanager
async def _sqlite_file_lock(database_url: str) -> AsyncIterator[None]:
    """Serialise migrations of one SQLite file across processes (and tasks) with ``flock``.

    The busy timeout does not cover everything a first start does: switching a new file to WAL
    needs an exclusive lock and answers "database is locked" at once when another connection races
    it. A lock file beside the database makes concurrent starts take turns instead.
    """
    if not database_url.startswith("sqlite") or ":memory:" in database_url or ":///" not in database_url:
        yield
        return
    path = Path(database_url.split(":///", 1)[1] + ".migrate-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = await asyncio.to_thread(os.open, str(path), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at (None for a database never migrated)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await db.dispose()
