"""The durable job engine's tables.

Two partial unique indexes carry the engine's guarantees in the database itself, so they hold across
any number of worker processes on any number of machines:

* ``uq_jobs_waiting_dedupe``: at most one *queued* job per dedupe key;
* ``uq_jobs_running_resource``: at most one *running* job per resource (e.g. ``server:42``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from vpsbridge.store.models.base import Base, Timestamped, utcnow

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


class Job(Timestamped, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "run_at"),
        Index(
            "uq_jobs_waiting_dedupe",
            "dedupe_key",
            unique=True,
            sqlite_where=text("status = 'queued' AND dedupe_key IS NOT NULL"),
            postgresql_where=text("status = 'queued' AND dedupe_key IS NOT NULL"),
        ),
        Index(
            "uq_jobs_running_resource",
            "resource_key",
            unique=True,
            sqlite_where=text("status = 'running' AND resource_key IS NOT NULL"),
            postgresql_where=text("status = 'running' AND resource_key IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Registered workflow name (``deploy``, ``periodic:stock_recalc`` ...).
    kind: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Workflow context that steps read and extend; persisted after every step.
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    resource_key: Mapped[str | None] = mapped_column(String(200), index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    #: Index of the next step to run; steps before it have completed.
    step_index: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=8)
    run_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column()
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()


class JobStep(Timestamped, Base):
    """One row per step execution attempt outcome (the step history an operator reads)."""

    __tablename__ = "job_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(16))  # done | wait | retry | fail | error
    detail: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(default=1)
    worker: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()


class JobLog(Base):
    """Timestamped log lines written by steps; streamed live by ``worker --verbose`` and ``cron``."""

    __tablename__ = "job_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    ts: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    level: Mapped[str] = mapped_column(String(10), default="info")
    step: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)


class PeriodicTask(Timestamped, Base):
    """Schedule state of a periodic task; ``next_run_at`` is advanced atomically by whoever fires it."""

    __tablename__ = "periodic_tasks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_run_at: Mapped[dt.datetime | None] = mapped_column()
    last_run_at: Mapped[dt.datetime | None] = mapped_column()
    last_result: Mapped[dict[str, Any] | None] = mapped_column()
