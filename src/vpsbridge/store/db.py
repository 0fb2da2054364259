"""Database engine and sessions, identical in behaviour on SQLite and PostgreSQL.

SQLite is opened in WAL mode with a busy timeout and foreign keys on, and every transaction opened
with :meth:`Database.session` starts with ``BEGIN IMMEDIATE``. A deferred SQLite transaction that reads
and then writes fails at once with "database is locked" when another connection committed in between
(the busy handler is not consulted for a lock upgrade), so taking the write lock up front is what makes
concurrent workers on one SQLite file safe. Transactions here are short, so serialising writers costs
little.

Pure reads on hot paths (a portal page view checking ownership, loading a browser session) use
:meth:`Database.read` instead: a plain deferred ``BEGIN`` that reads a WAL snapshot, so any number of
readers run beside the one writer instead of queueing behind it. A write inside such a transaction is
a bug and fails fast rather than silently serialising.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from vpsbridge.config import Settings

log = logging.getLogger("vpsbridge.store")

#: A SQLite transaction holding the write lock longer than this is reported: every other writer
#: (workers, the web process, the upstream log) waits for it, so one is almost always a bug (an
#: upstream call or a sleep inside ``db.session()``).
SLOW_WRITE_LOCK_SECONDS = 2.0

#: Execution option marking the engine behind :meth:`Database.read`.
_READ_ONLY = "vpsbridge_read_only"


class Database:
    """An async engine plus a session factory; one per process."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 15000, pool_size: int = 10, echo: bool = False):
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            if url.startswith("sqlite+aiosqlite:///") and ":memory:" not in url:
                from pathlib import Path

                Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": busy_timeout_ms / 1000}
            # Connections are pooled (each aiosqlite connection owns a thread; opening one per
            # transaction cost more than the queries of a page view).
            if ":memory:" not in url:
                kwargs["pool_size"] = pool_size
                kwargs["max_overflow"] = pool_size
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine.sync_engine, busy_timeout_ms)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        reader = self.engine.execution_options(**{_READ_ONLY: True})
        self.read_sessionmaker = async_sessionmaker(reader, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.effective_database_url,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pool_size=settings.db_pool_size,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction: on SQLite a snapshot that neither waits for nor blocks writers."""
        async with self.read_sessionmaker() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query (used by /readyz)."""
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


#: Frames from these places are machinery, not the code that owns a transaction.
_LIBRARY_PATHS = ("/sqlalchemy/", "/asyncio/", "/greenlet/", "/_pytest/", "/pluggy/", "store/db.py", "<")


def _caller() -> str:
    """The application frames that own the transaction.

    SQLAlchemy runs this event in a greenlet; the awaiting coroutines (``async with db.session()``)
    are on the parent greenlet's stack, suspended where it switched to us.
    """
    import greenlet  # type: ignore[import-untyped]

    parent = greenlet.getcurrent().parent
    frame = parent.gr_frame if parent is not None else None
    names: list[str] = []
    while frame is not None and len(names) < 6:
        code = frame.f_code
        if not any(part in code.co_filename for part in _LIBRARY_PATHS):
            names.append(f"{code.co_name} ({code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno})")
        frame = frame.f_back
    return " <- ".join(names) or "unknown code"


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below instead of pysqlite.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.info["vpsbridge_tx_started"] = time.monotonic()

    def _on_end(conn: Any) -> None:
        started = conn.info.pop("vpsbridge_tx_started", None)
        if started is None:
            return
        held = time.monotonic() - started
        if held > SLOW_WRITE_LOCK_SECONDS:
            log.warning("SQLite write lock held for %.1f s by %s", held, _caller())

    event.listen(engine, "commit", _on_end)
    event.listen(engine, "rollback", _on_end)
