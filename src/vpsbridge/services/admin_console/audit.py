"""The audit log as the operator console lists it: newest first, filtered, paged by id."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from vpsbridge.store.models import AuditLog

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: dt.datetime
    actor_type: str
    actor_id: str | None
    ip: str | None
    action: str
    object_type: str | None
    object_id: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditQuery:
    actor_type: str | None = None
    actor_id: str | None = None
    #: Exact action (``job.cancel``) or a prefix ending in a dot (``job.``).
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    #: Free text over action, object and actor.
    q: str | None = None
    before_id: int | None = None
    limit: int = 100


def _entry(row: AuditLog) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        ts=row.ts,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        ip=row.ip,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        details=dict(row.details or {}),
    )


async def list_audit(ctx: AppContext, query: AuditQuery) -> list[AuditEntry]:
    stmt = select(AuditLog).order_by(AuditLog.id.desc())
    if query.actor_type:
        stmt = stmt.where(AuditLog.actor_type == query.actor_type)
    if query.actor_id:
        stmt = stmt.where(AuditLog.actor_id == query.actor_id)
    if query.action:
        if query.action.endswith("."):
            stmt = stmt.where(AuditLog.action.startswith(query.action, autoescape=True))
        else:
            stmt = stmt.where(AuditLog.action == query.action)
    if query.object_type:
        stmt = stmt.where(AuditLog.object_type == query.object_type)
    if query.object_id:
        stmt = stmt.where(AuditLog.object_id == query.object_id)
    if query.q:
        pattern = f"%{query.q.strip().lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(AuditLog.action).like(pattern),
                func.lower(func.coalesce(AuditLog.object_type, "")).like(pattern),
                func.lower(func.coalesce(AuditLog.object_id, "")).like(pattern),
                func.lower(func.coalesce(AuditLog.actor_id, "")).like(pattern),
            )
        )
    if query.before_id is not None:
        stmt = stmt.where(AuditLog.id < query.before_id)
    async with ctx.db.session() as session:
        rows = (await session.scalars(stmt.limit(max(1, min(query.limit, 500))))).all()
    return [_entry(r) for r in rows]
