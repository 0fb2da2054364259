"""Claiming jobs and holding them: the part of the engine that keeps workers from colliding.

A job is *claimable* when it is queued and due, or when it is ``running`` but its lease has expired.
The second case covers two situations the engine treats alike:

* a worker died (or lost its database connection) mid-step: its lease runs out and another worker
  resumes the job at ``step_index``, i.e. after the last completed step;
* a job *parked* by ``Wait`` or a retry backoff: it stays ``running`` (so it keeps its resource, and no
  other job on the same server slips in between two steps of a deploy), with no lease owner and
  ``lease_expires_at`` set to the time it should wake up.

On PostgreSQL candidates are locked with ``FOR UPDATE SKIP LOCKED`` so concurrent workers pick
disjoint jobs without waiting on each other; on SQLite the whole claim is one ``BEGIN IMMEDIATE``
transaction. Jobs whose resource already has a running job are excluded in the query, and the partial
unique index ``uq_jobs_running_resource`` is the final guard against two workers claiming two jobs of
the same resource at once: the loser's update fails in its savepoint and it skips that job.

Every later write by the claiming worker is conditioned on ``lease_owner`` (a token unique to that
claim), so a worker that lost its lease can never overwrite the progress of the one that took over.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, exists, func, or_, select, text, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from vpsbridge.store.db import Database
from vpsbridge.store.models import Job, utcnow

#: The jobs table itself: hot-path statements skip the ORM layer (a measurable share of a step's CPU).
J = cast(Table, Job.__table__)


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker now holds, with everything the runner needs (no second read)."""

    id: int
    kind: str
    lease_owner: str
    claimed_at: dt.datetime
    run_at: dt.datetime
    #: The job was already running: resumed after a dead worker's lease or woken from a park.
    resumed: bool
    #: Lease owner before this claim (None for a queued or parked job).
    previous_owner: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    step_index: int = 0
    attempts: int = 0
    max_attempts: int = 1
    result: dict[str, Any] | None = None
    cancel_requested: bool = False


Executor = AsyncSession | AsyncConnection


async def locked_now(executor: Executor) -> dt.datetime:
    """The current time, read once this transaction holds the database's write lock.

    On SQLite ``BEGIN IMMEDIATE`` runs with the first statement and may wait up to the busy timeout
    for other writers; a lease computed from a clock read before that wait can be born already
    expired, letting a second worker take a job that is still running.
    """
    dialect = executor.dialect if isinstance(executor, AsyncConnection) else executor.get_bind().dialect
    if dialect.name == "sqlite":
        await executor.execute(text("SELECT 1"))
    return utcnow()


def new_lease_owner(worker_id: str) -> str:
    """A token naming one claim; claims by the same worker never share it."""
    return f"{worker_id}/{uuid.uuid4().hex[:12]}"


_COLUMNS = (
    J.c.id,
    J.c.kind,
    J.c.status,
    J.c.resource_key,
    J.c.lease_owner,
    J.c.run_at,
    J.c.payload,
    J.c.state,
    J.c.step_index,
    J.c.attempts,
    J.c.max_attempts,
    J.c.result,
    J.c.cancel_requested,
)

# The hot-path statements are built once with bound parameters: building SQLAlchemy expressions per
# call cost more CPU than the database round trips they describe. Parameter names carry a ``b_``
# prefix so they never collide with the column names that fill an UPDATE's SET clause at execute time.
_NOW = bindparam("b_now", type_=J.c.run_at.type)
_CLAIMED_AT = bindparam("b_claimed_at", type_=J.c.started_at.type)
_CLAIMABLE = or_(
    and_(J.c.status == "queued", J.c.run_at <= _NOW),
    and_(J.c.status == "running", J.c.lease_expires_at < _NOW),
)
_OTHER = J.alias("other")
_BUSY = exists().where(
    _OTHER.c.status == "running",
    _OTHER.c.resource_key == J.c.resource_key,
    _OTHER.c.id != J.c.id,
)
_CANDIDATES = (
    select(*_COLUMNS)
    .where(_CLAIMABLE, or_(J.c.resource_key.is_(None), ~_BUSY))
    .order_by(J.c.run_at, J.c.id)
    .limit(bindparam("b_limit"))
)
_CANDIDATES_SKIP_LOCKED = _CANDIDATES.with_for_update(skip_locked=True, of=J)
_TAKE = {
    "status": "running",
    "lease_owner": bindparam("b_owner"),
    "lease_expires_at": bindparam("b_until", type_=J.c.lease_expires_at.type),
    "started_at": func.coalesce(J.c.started_at, _CLAIMED_AT),
    "updated_at": _CLAIMED_AT,
}
_TAKE_MANY = (
    update(J)
    .where(J.c.id.in_(bindparam("b_ids", expanding=True)), _CLAIMABLE)
    .values(_TAKE)
    .returning(J.c.id)
)
_TAKE_ONE = update(J).where(J.c.id == bindparam("b_id"), _CLAIMABLE).values(_TAKE).returning(J.c.id)
_OWNED = update(J).where(
    J.c.id == bindparam("b_job"), J.c.lease_owner == bindparam("b_owner"), J.c.status == "running"
)
_OWNED_RETURNING = _OWNED.returning(J.c.cancel_requested)


async def update_owned(
    conn: AsyncConnection, job_id: int, owner: str, values: dict[str, Any], *, returning: bool = False
) -> CursorResult[Any]:
    """UPDATE ``job_id`` with ``values`` only while ``owner`` holds its lease.

    Without ``returning`` the caller checks ``rowcount == 1``; with it, ``first()`` is the row's
    ``cancel_requested`` or None when the lease is gone.
    """
    stmt = _OWNED_RETURNING if returning else _OWNED
    return await conn.execute(stmt, {"b_job": job_id, "b_owner": owner, **values})


async def claim(db: Database, worker_id: str, lease_seconds: float, limit: int) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs for ``worker_id``, oldest ``run_at`` first.

    Jobs without a resource are taken with one ``UPDATE``; each job with a resource gets its own
    savepoint, because that update is the one the running-resource index may reject.
    """
    if limit <= 0:
        return []
    now = utcnow()
    query = _CANDIDATES if db.is_sqlite else _CANDIDATES_SKIP_LOCKED
    owner = new_lease_owner(worker_id)
    taken: list[Any] = []
    async with db.engine.begin() as conn:
        candidates = (await conn.execute(query, {"b_now": now, "b_limit": limit * 2})).mappings().all()
        claimed_at = utcnow()  # read after any lock wait (see locked_now)
        params = {
            "b_now": now,
            "b_owner": owner,
            "b_until": claimed_at + dt.timedelta(seconds=lease_seconds),
            "b_claimed_at": claimed_at,
        }
        plain: list[Any] = []
        keyed: list[Any] = []
        resources: set[str] = set()
        for row in candidates:
            if len(plain) + len(keyed) >= limit:
                break
            key = row["resource_key"]
            if key is None:
                plain.append(row)
            elif key not in resources:
                resources.add(key)
                keyed.append(row)
        if plain:
            done = await conn.execute(_TAKE_MANY, {**params, "b_ids": [r["id"] for r in plain]})
            ids = set(done.scalars().all())
            taken.extend(r for r in plain if r["id"] in ids)
        for row in keyed:
            try:
                async with conn.begin_nested():
                    got = (await conn.execute(_TAKE_ONE, {**params, "b_id": row["id"]})).first()
            except IntegrityError:
                continue  # another worker just started a job on the same resource
            if got is not None:
                taken.append(row)
    return [
        ClaimedJob(
            id=row["id"],
            kind=row["kind"],
            lease_owner=owner,
            claimed_at=claimed_at,
            run_at=row["run_at"],
            resumed=row["status"] == "running",
            previous_owner=row["lease_owner"],
            payload=dict(row["payload"] or {}),
            state=dict(row["state"] or {}),
            step_index=row["step_index"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            result=dict(row["result"]) if row["result"] else None,
            cancel_requested=bool(row["cancel_requested"]),
        )
        for row in taken
    ]


async def heartbeat(db: Database, job_id: int, owner: str, lease_seconds: float) -> bool:
    """Extend the lease; False means the job is no longer ours (stop touching it)."""
    async with db.engine.begin() as conn:
        now = await locked_now(conn)
        result = await update_owned(
            conn,
            job_id,
            owner,
            {"lease_expires_at": now + dt.timedelta(seconds=lease_seconds), "updated_at": now},
        )
    return result.rowcount == 1


async def release(db: Database, job_id: int, owner: str) -> bool:
    """Hand a job back at once (graceful stop): parked with no owner, due now, same step."""
    async with db.engine.begin() as conn:
        now = await locked_now(conn)
        result = await update_owned(
            conn,
            job_id,
            owner,
            {"lease_owner": None, "lease_expires_at": now, "run_at": now, "updated_at": now},
        )
    return result.rowcount == 1


async def next_due(db: Database) -> dt.datetime | None:
    """The earliest time a job becomes claimable (lets an idle worker sleep just long enough)."""
    async with db.session() as session:
        queued = await session.scalar(
            select(J.c.run_at).where(J.c.status == "queued").order_by(J.c.run_at).limit(1)
        )
        parked = await session.scalar(
            select(J.c.lease_expires_at)
            .where(J.c.status == "running", J.c.lease_expires_at.is_not(None))
            .order_by(J.c.lease_expires_at)
            .limit(1)
        )
    times = [t for t in (queued, parked) if t is not None]
    return min(times) if times else None
