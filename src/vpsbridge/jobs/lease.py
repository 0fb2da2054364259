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
from dataclasses import dataclass

from sqlalchemy import and_, exists, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from vpsbridge.store.db import Database
from vpsbridge.store.models import Job, utcnow


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    lease_owner: str
    claimed_at: dt.datetime
    run_at: dt.datetime
    #: The job was already running: resumed after a dead worker's lease or woken from a park.
    resumed: bool
    #: Lease owner before this claim (None for a queued or parked job).
    previous_owner: str | None


async def locked_now(session: AsyncSession) -> dt.datetime:
    """The current time, read once this transaction holds the database's write lock.

    On SQLite ``BEGIN IMMEDIATE`` runs with the first statement and may wait up to the busy timeout
    for other writers; a lease computed from a clock read before that wait can be born already
    expired, letting a second worker take a job that is still running.
    """
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("SELECT 1"))
    return utcnow()


def _claimable(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        and_(Job.status == "queued", Job.run_at <= now),
        and_(Job.status == "running", Job.lease_expires_at < now),
    )


def new_lease_owner(worker_id: str) -> str:
    """A token naming one claim; two claims by the same worker never share it."""
    return f"{worker_id}/{uuid.uuid4().hex[:12]}"


async def claim(db: Database, worker_id: str, lease_seconds: float, limit: int) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs for ``worker_id``, oldest ``run_at`` first."""
    if limit <= 0:
        return []
    now = utcnow()
    other = aliased(Job)
    busy = exists().where(
        other.status == "running",
        other.resource_key == Job.resource_key,
        other.id != Job.id,
    )
    query = (
        select(Job.id, Job.resource_key, Job.status, Job.lease_owner, Job.run_at)
        .where(_claimable(now), or_(Job.resource_key.is_(None), ~busy))
        .order_by(Job.run_at, Job.id)
        .limit(limit * 2)
    )
    if not db.is_sqlite:
        query = query.with_for_update(skip_locked=True, of=Job)
    claimed: list[ClaimedJob] = []
    async with db.session() as session:
        candidates = (await session.execute(query)).all()
        claimed_at = utcnow()  # read after any lock wait (see locked_now)
        leased_until = claimed_at + dt.timedelta(seconds=lease_seconds)
        taken_resources: set[str] = set()
        for job_id, resource_key, status, previous_owner, run_at in candidates:
            if len(claimed) >= limit:
                break
            if resource_key is not None and resource_key in taken_resources:
                continue
            owner = new_lease_owner(worker_id)
            stmt = (
                update(Job)
                .where(Job.id == job_id, _claimable(now))
                .values(
                    status="running",
                    lease_owner=owner,
                    lease_expires_at=leased_until,
                    started_at=Job.started_at if status == "running" else claimed_at,
                    updated_at=claimed_at,
                )
                .execution_options(synchronize_session=False)
            )
            try:
                async with session.begin_nested():
                    result = await session.execute(stmt)
            except IntegrityError:
                continue  # another worker just started a job on the same resource
            if getattr(result, "rowcount", 0) != 1:
                continue
            if resource_key is not None:
                taken_resources.add(resource_key)
            claimed.append(
                ClaimedJob(
                    id=job_id,
                    lease_owner=owner,
                    claimed_at=claimed_at,
                    run_at=run_at,
                    resumed=status == "running",
                    previous_owner=previous_owner,
                )
            )
    return claimed


async def heartbeat(db: Database, job_id: int, owner: str, lease_seconds: float) -> bool:
    """Extend the lease; False means the job is no longer ours (stop touching it)."""
    async with db.session() as session:
        now = await locked_now(session)
        result = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
            .values(lease_expires_at=now + dt.timedelta(seconds=lease_seconds), updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return getattr(result, "rowcount", 0) == 1


async def release(db: Database, job_id: int, owner: str) -> bool:
    """Hand a job back at once (graceful stop): parked with no owner, due now, same step."""
    async with db.session() as session:
        now = await locked_now(session)
        result = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
            .values(lease_owner=None, lease_expires_at=now, run_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return getattr(result, "rowcount", 0) == 1


async def next_due(db: Database) -> dt.datetime | None:
    """The earliest time a job becomes claimable (lets an idle worker sleep just long enough)."""
    async with db.session() as session:
        queued = await session.scalar(
            select(Job.run_at).where(Job.status == "queued").order_by(Job.run_at).limit(1)
        )
        parked = await session.scalar(
            select(Job.lease_expires_at)
            .where(Job.status == "running", Job.lease_expires_at.is_not(None))
            .order_by(Job.lease_expires_at)
            .limit(1)
        )
    times = [t for t in (queued, parked) if t is not None]
    return min(times) if times else None
