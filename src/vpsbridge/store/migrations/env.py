"""Alembic environment: runs migrations on the connection :mod:`vpsbridge.store.migrate` hands over.

``vpsbridge.store.migrate`` opens an async engine and passes a synchronous connection through
``config.attributes["connection"]``. Run from the ``alembic`` command line instead (for authoring
revisions), the URL comes from ``sqlalchemy.url`` or ``VPSBRIDGE_DATABASE_URL``. SQLite cannot alter
tables in place, so batch mode ("move and copy") is on for it.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from vpsbridge.store.models import Base

target_metadata = Base.metadata
config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=False,
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_sync)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("VPSBRIDGE_DATABASE_URL")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=bool(url and url.startswith("sqlite")),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("VPSBRIDGE_DATABASE_URL")
    if not url:
        raise RuntimeError("set sqlalchemy.url or VPSBRIDGE_DATABASE_URL to run migrations")
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
