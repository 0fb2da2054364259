"""Shared helpers of the operator console tests: a context, an operator, sample rows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from vpsbridge.config import load_settings
from vpsbridge.services import admins
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.store.models import (
    AuditLog,
    Job,
    JobLog,
    JobStep,
    Platform,
    Product,
    Server,
    Service,
    UpstreamRequest,
    utcnow,
)
from vpsbridge.store.secrets import generate_key

PASSWORD = "correct horse battery"
ACTOR = Actor(type="admin", id="1", ip="198.51.100.7")


@pytest.fixture
async def ctx(db_url: str, tmp_path: Path) -> AsyncIterator[AppContext]:
    settings = load_settings(database_url=db_url, data_dir=tmp_path, encryption_keys=[generate_key()])
    context = await AppContext.create(settings)
    yield context
    await context.close()


async def make_admin(ctx: AppContext, username: str = "alice") -> int:
    out = await admins.create_admin(ctx, username, PASSWORD, Actor.cli())
    return out.id


async def audit_actions(ctx: AppContext, action: str | None = None) -> list[AuditLog]:
    async with ctx.db.session() as session:
        query = select(AuditLog).order_by(AuditLog.id)
        if action is not None:
            query = query.where(AuditLog.action == action)
        return list((await session.scalars(query)).all())


async def seed_catalog(ctx: AppContext) -> dict[str, int]:
    """A dummy platform, a product with a full plan, and three services in different states."""
    async with ctx.db.session() as session:
        platform = Platform(
            name="dummy-1",
            type="dummy",
            url="dummy://",
            credentials_enc=ctx.secrets.encrypt_json({"token": "t0ken-value"}),
        )
        session.add(platform)
        await session.flush()
        product = Product(
            name="Small VPS",
            platform_id=platform.id,
            plan={"cpu_cores": 1, "memory_mb": 1024, "disk_gb": 20},
            billing_product_id="7",
        )
        session.add(product)
        await session.flush()
        ids: dict[str, int] = {"platform": platform.id, "product": product.id}
        for n, (status, hostname, state) in enumerate(
            [
                ("active", "web1.example.net", "running"),
                ("suspended", "db1.example.net", "stopped"),
                ("failed", None, "pending"),
            ],
            start=1,
        ):
            server = Server(
                platform_id=platform.id,
                external_id=str(100 + n) if hostname else None,
                hostname=hostname,
                state=state,
                last_known={"ipv4": [f"192.0.2.{n}"], "ipv6": [], "note": "from the platform"},
            )
            session.add(server)
            await session.flush()
            service = Service(
                billing_service_id=str(500 + n),
                client_id=f"client-{n % 2}",
                product_id=product.id,
                server_id=server.id,
                status=status,
                last_error="platform refused" if status == "failed" else None,
            )
            session.add(service)
            await session.flush()
            ids[f"service{n}"] = service.id
            ids[f"server{n}"] = server.id
    return ids


async def seed_job(
    ctx: AppContext,
    *,
    kind: str = "service.deploy",
    status: str = "failed",
    steps: list[tuple[str, str, float]] | None = None,
    lease_owner: str | None = None,
    error: str | None = "step create: platform answered 500",
    resource_key: str | None = None,
) -> int:
    """A job with executed steps (name, outcome, seconds) and a log line per step."""
    now = utcnow()
    async with ctx.db.session() as session:
        job = Job(
            kind=kind,
            status=status,
            payload={"service_id": 1},
            state={"x": 1},
            # Running jobs hold their resource exclusively; each sample job gets its own.
            resource_key=resource_key or f"server:{uuid.uuid4().hex[:8]}",
            attempts=2,
            last_error=error,
            lease_owner=lease_owner,
            started_at=now - dt.timedelta(seconds=10),
            finished_at=now if status in ("failed", "succeeded", "cancelled") else None,
        )
        session.add(job)
        await session.flush()
        start = now - dt.timedelta(seconds=10)
        for index, (name, outcome, seconds) in enumerate(
            steps or [("reserve", "done", 0.25), ("create", "fail", 1.5)]
        ):
            end = start + dt.timedelta(seconds=seconds)
            session.add(
                JobStep(
                    job_id=job.id,
                    index=index,
                    name=name,
                    outcome=outcome,
                    detail=f"{name} {outcome}",
                    attempt=1,
                    worker="w1",
                    started_at=start,
                    finished_at=end,
                )
            )
            session.add(JobLog(job_id=job.id, ts=end, step=name, message=f"{name} finished: {outcome}"))
            start = end
        session.add(
            UpstreamRequest(
                client="dummy:1",
                method="POST",
                url="https://panel.example/api/servers",
                status=500,
                duration_ms=12.5,
                outcome="unknown",
                error="server error",
                job_id=job.id,
            )
        )
        return job.id
