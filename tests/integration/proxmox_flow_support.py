"""A Proxmox world for workflow tests: an app on the test database, a simulated cluster behind the
driver, a platform, a product and IP pools, and helpers to run the worker and read the records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from vpsbridge.config import load_settings
from vpsbridge.jobs.worker import Worker
from vpsbridge.services import platforms, pools, products
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.provisioning.drivers import EXTRAS_TRANSPORTS
from vpsbridge.services.provisioning.proxmox import create_proxmox_service
from vpsbridge.services.provisioning.schemas import ServiceOut
from vpsbridge.sim.proxmox import ProxmoxState, SimTransport, create_app
from vpsbridge.sim.proxmox.cluster import standard_cluster
from vpsbridge.store.models import IpAddress, Job, JobStep, Server, Service, VmidReservation

URL = "https://pve.example.test:8006"
ACTOR = Actor.system("test")
PLAN: dict[str, Any] = {
    "cpu_cores": 2,
    "memory_mb": 2048,
    "disk_gb": 20,
    "template": 9000,
    "bandwidth_mbps": 100,
}


@dataclass
class World:
    app: AppContext
    sim: ProxmoxState
    platform_id: int
    product_id: int

    async def create(self, billing_id: str, **extra: Any) -> ServiceOut:
        data = {"billing_service_id": billing_id, "client_id": "c1", "product": self.product_id, **extra}
        return await create_proxmox_service(self.app, data, ACTOR)

    async def run(self, timeout: float = 60.0, concurrency: int = 4) -> None:
        worker = Worker(self.app, concurrency=concurrency, periodic=False, wakeup=False, worker_id="w-test")
        await worker.run_until_idle(timeout=timeout)

    async def service(self, service_id: int) -> Service:
        async with self.app.db.session() as session:
            row = await session.get(Service, service_id)
            assert row is not None
            return row

    async def server(self, server_id: int) -> Server:
        async with self.app.db.session() as session:
            row = await session.get(Server, server_id)
            assert row is not None
            return row

    async def addresses(self, server_id: int | None = None) -> list[IpAddress]:
        async with self.app.db.session() as session:
            query = select(IpAddress).order_by(IpAddress.id)
            if server_id is not None:
                query = query.where(IpAddress.server_id == server_id)
            return list((await session.execute(query)).scalars())

    async def vmids(self) -> list[VmidReservation]:
        async with self.app.db.session() as session:
            return list((await session.execute(select(VmidReservation))).scalars())

    async def jobs(self, kind: str | None = None) -> list[Job]:
        async with self.app.db.session() as session:
            query = select(Job).order_by(Job.id)
            if kind:
                query = query.where(Job.kind == kind)
            return list((await session.execute(query)).scalars())

    async def steps(self, job_id: int) -> list[JobStep]:
        async with self.app.db.session() as session:
            return list(
                (
                    await session.execute(
                        select(JobStep).where(JobStep.job_id == job_id).order_by(JobStep.id)
                    )
                ).scalars()
            )


def settings_for(db_url: str, data_dir: Path, **extra: Any) -> Any:
    return load_settings(
        database_url=db_url,
        data_dir=data_dir,
        encryption_keys=[Fernet.generate_key().decode()],
        time_scale=extra.pop("time_scale", 0.01),
        job_lease_seconds=60,
        job_heartbeat_seconds=15,
        worker_poll_seconds=0.02,
        job_backoff_base_seconds=1,
        task_intervals={},
        **extra,
    )


async def build_world(
    db_url: str,
    data_dir: Path,
    *,
    sim_time_scale: float = 0.0,
    plan: dict[str, Any] | None = None,
    placement: dict[str, Any] | None = None,
    product_settings: dict[str, Any] | None = None,
    pool_specs: list[dict[str, Any]] | None = None,
    read_timeout: float = 2.0,
    time_scale: float = 0.01,
) -> World:
    app = await AppContext.create(settings_for(db_url, data_dir, time_scale=time_scale))
    sim, info = standard_cluster(ProxmoxState(time_scale=sim_time_scale, seed=11))
    app.extras[EXTRAS_TRANSPORTS] = {URL: SimTransport(create_app(sim), read_timeout=read_timeout)}
    platform = await platforms.create_platform(
        app,
        {
            "name": "pve",
            "type": "proxmox",
            "url": URL,
            "credentials": {"token_id": info.token_id, "token_secret": info.token_secret},
            "settings": {
                "poll_interval": 0.01,
                "retry_wait": 0.01,
                "task_timeout": 10,
                "read_timeout": read_timeout,
                "storage": "local-lvm",
            },
        },
        ACTOR,
    )
    product = await products.create_product(
        app,
        {
            "name": "kvm-2g",
            "billing_product_id": "p1",
            "platform": platform.id,
            "plan": dict(plan or PLAN),
            "placement": {"storage": "local-lvm", **(placement or {})},
            "settings": dict(product_settings or {}),
        },
        ACTOR,
    )
    default_pools: list[dict[str, Any]] = [
        {"name": "v4", "network": "192.0.2.0/24", "gateway": "192.0.2.1", "dns_servers": ["192.0.2.53"]},
        {"name": "v6", "network": "2001:db8:1::/64", "gateway": "2001:db8:1::1"},
    ]
    for spec in pool_specs if pool_specs is not None else default_pools:
        await pools.create_pool(app, {"platform": platform.id, **spec}, ACTOR)
    return World(app, sim, platform.id, product.id)


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    w = await build_world(db_url, tmp_path)
    yield w
    await w.app.close()
