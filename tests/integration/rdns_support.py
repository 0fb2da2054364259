"""Shared set-up of the rDNS service tests: an application context, a dummy platform and servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from vpsbridge.config import load_settings
from vpsbridge.jobs.worker import Worker
from vpsbridge.platforms.dummy.cloud import DummyCloud
from vpsbridge.platforms.models import ServerSpec
from vpsbridge.services import dns_providers, platforms, pools, products
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.store.models import IpAddress, IpPool, Job, JobLog, Server, Service

ACTOR = Actor.system("test")


async def make_app(db_url: str, data_dir: Path, **overrides: Any) -> AppContext:
    settings = load_settings(
        database_url=db_url,
        data_dir=data_dir,
        encryption_keys=[Fernet.generate_key().decode()],
        time_scale=0.01,
        worker_poll_seconds=0.05,
        job_lease_seconds=60,
        job_heartbeat_seconds=15,
        **overrides,
    )
    return await AppContext.create(settings)


@pytest.fixture
async def platform_url() -> AsyncIterator[str]:
    url = f"dummy://rdns-{uuid.uuid4().hex[:8]}"
    yield url
    DummyCloud.reset(url)


async def add_platform(ctx: AppContext, url: str) -> int:
    created = await platforms.create_platform(
        ctx, {"name": "dummy-" + url[-8:], "type": "dummy", "url": url, "credentials": {"token": "t"}}, ACTOR
    )
    return created.id


async def add_powerdns(ctx: AppContext, api_url: str, api_key: str, name: str = "pdns") -> int:
    created = await dns_providers.create_dns_provider(
        ctx,
        {
            "name": name,
            "type": "powerdns",
            "url": api_url,
            "credentials": {"api_key": api_key},
            "settings": {"default_ttl": 300, "zone_cache_seconds": 0},
        },
        ACTOR,
    )
    return created.id


async def add_server(
    ctx: AppContext,
    platform_id: int,
    platform_url: str,
    hostname: str,
    addresses: Sequence[str],
    *,
    subnets: Sequence[str] = (),
    pool: str | None = None,
    product: str | None = None,
    state: str = "running",
) -> int:
    """A server on the dummy platform (holding exactly ``addresses`` and ``subnets``) and its rows."""
    cloud = DummyCloud.for_url(platform_url)
    remote = cloud.new_server(
        ServerSpec(hostname=hostname, cpu_cores=1, memory_mb=512, disk_gb=10, ipv4=0, ipv6=0)
    )
    remote.ipv4 = [a for a in addresses if ":" not in a]
    remote.ipv6 = [a for a in addresses if ":" in a] + list(subnets)
    product_id = None
    if product is not None:
        found = await products.get_product_by_billing_id(ctx, product)
        assert found is not None
        product_id = found.id
    async with ctx.db.session() as session:
        server = Server(
            platform_id=platform_id,
            external_id=str(remote.id),
            node=remote.node,
            hostname=hostname,
            state=state,
            last_known={"ipv6": list(subnets)} if subnets else {},
        )
        session.add(server)
        await session.flush()
        if pool is not None:
            pool_id = await session.scalar(select(IpPool.id).where(IpPool.name == pool))
            assert pool_id is not None
            for address in addresses:
                session.add(IpAddress(pool_id=pool_id, address=address, server_id=server.id))
        else:
            last = dict(server.last_known)
            last["ipv4"] = [a for a in addresses if ":" not in a]
            last["ipv6"] = [a for a in addresses if ":" in a] + list(subnets)
            server.last_known = last
        if product_id is not None:
            session.add(Service(client_id="c1", product_id=product_id, server_id=server.id, status="active"))
        return server.id


async def add_pool(ctx: AppContext, platform_id: int, name: str, network: str, **settings: Any) -> None:
    await pools.create_pool(
        ctx, {"name": name, "network": network, "platform": platform_id, "settings": settings}, ACTOR
    )


async def add_product(ctx: AppContext, platform_id: int, billing_id: str, dns_zone: str | None) -> None:
    await products.create_product(
        ctx,
        {"name": billing_id, "billing_product_id": billing_id, "platform": platform_id, "dns_zone": dns_zone},
        ACTOR,
    )


async def run_jobs(ctx: AppContext) -> None:
    await Worker(ctx, periodic=False, wakeup=False).run_until_idle(timeout=60)


async def job(ctx: AppContext, job_id: int) -> Job:
    async with ctx.db.session() as session:
        found = await session.get(Job, job_id)
        assert found is not None
        return found


async def job_lines(ctx: AppContext, job_id: int) -> list[str]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(JobLog.message).where(JobLog.job_id == job_id).order_by(JobLog.id)
        )
        return list(rows)


async def set_hostname(ctx: AppContext, server_id: int, hostname: str) -> None:
    async with ctx.db.session() as session:
        server = await session.get(Server, server_id)
        assert server is not None
        server.hostname = hostname


async def assign(ctx: AppContext, server_id: int, pool: str, address: str) -> None:
    async with ctx.db.session() as session:
        pool_id = await session.scalar(select(IpPool.id).where(IpPool.name == pool))
        assert pool_id is not None
        session.add(IpAddress(pool_id=pool_id, address=address, server_id=server_id))
