"""Shared helpers of the catalog service tests: an AppContext on the test database, audit lookups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from vpsbridge.config import load_settings
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.store.models import AuditLog
from vpsbridge.store.secrets import generate_key

ACTOR = Actor(type="admin", id="alice", ip="198.51.100.7")


@pytest.fixture
async def ctx(db_url: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    settings = load_settings(database_url=db_url, data_dir=tmp_path, encryption_keys=[generate_key()])
    context = await AppContext.create(settings)
    yield context
    await context.close()


async def audit_rows(ctx: AppContext, action: str | None = None) -> list[AuditLog]:
    async with ctx.db.session() as session:
        query = select(AuditLog).order_by(AuditLog.id)
        if action is not None:
            query = query.where(AuditLog.action == action)
        return list((await session.execute(query)).scalars().all())


async def raw_value(ctx: AppContext, table: str, column: str, row_id: int) -> Any:
    """A column exactly as stored, bypassing the models."""
    async with ctx.db.session() as session:
        result = await session.execute(text(f"SELECT {column} FROM {table} WHERE id = :id"), {"id": row_id})
        return result.scalar_one()
