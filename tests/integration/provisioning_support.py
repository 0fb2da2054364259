"""Shared set-up for the provisioning tests: an application context with fast engine timings, a
dummy platform of its own (fresh in-memory cloud), a product, an event recorder and a worker runner."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from vpsbridge.config import load_settings
from vpsbridge.jobs.worker import Worker
from vpsbridge.platforms.dummy.cloud import DummyCloud
from vpsbridge.services import platforms, products
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.provisioning import ServiceEvent, on_service_event, remove_service_listener

ACTOR = Actor.system("test")
PLAN = {"cpu_cores": 1, "memory_mb": 1024, "disk_gb": 20, "traffic_gb": 1000}


def fast_settings(db_url: str, data_dir: Path, **extra: Any) -> Any:
    """Engine timings compressed 100x: a 5 s poll is 50 ms, leases 0.6 s, backoff base 20 ms."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "data_dir": data_dir,
        "encryption_keys": [Fernet.generate_key().decode()],
        "time_scale": 0.01,
        "job_lease_seconds": 60,
        "job_heartbeat_seconds": 15,
        "worker_poll_seconds": 0.05,
        "job_backoff_base_seconds": 2,
        "job_backoff_max_seconds": 20,
        "task_intervals": {},
    }
    values.update(extra)
    return load_settings(**values)


@dataclass
class Events:
    """Records every service event delivered; ``fail_next`` makes the next deliveries raise."""

    seen: list[ServiceEvent] = field(default_factory=list)
    fail_next: int = 0

    async def __call__(self, ctx: AppContext, event: ServiceEvent) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise RuntimeError("billing is down")
        self.seen.append(event)

    def kinds(self, service_id: int | None = None) -> list[str]:
        return [e.kind for e in self.seen if service_id is None or e.service_id == service_id]


@dataclass
class World:
    app: AppContext
    platform: str
    url: str
    product: str
    events: Events

    @property
    def cloud(self) -> DummyCloud:
        return DummyCloud.for_url(self.url)

    async def drain(self, timeout: float = 30.0) -> None:
        """Run a worker until no job is queued or running."""
        worker = Worker(self.app, concurrency=4, periodic=False, wakeup=False)
        await worker.run_until_idle(timeout=timeout)

    def create_request(self, billing_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "billing_service_id": billing_id,
            "client_id": "501",
            "client": {"name": "Ada Lovelace", "email": "ada@example.net"},
            "product": self.product,
            "os_template": "debian-12",
            "hostname": f"{billing_id}.example.net",
            **extra,
        }


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    app = await AppContext.create(fast_settings(db_url, tmp_path))
    url = f"dummy://prov-{uuid.uuid4().hex[:8]}"
    name = f"dummy-{uuid.uuid4().hex[:6]}"
    await platforms.create_platform(
        app,
        {
            "name": name,
            "type": "dummy",
            "url": url,
            "credentials": {"token": "t"},
            # Real seconds in the in-memory cloud (it does not know time_scale).
            "settings": {
                "nodes": [{"name": "n1", "cpu_cores": 8, "memory_mb": 8192, "disk_gb": 200}],
                "task_seconds": 0.05,
            },
        },
        ACTOR,
    )
    product = f"vps-{uuid.uuid4().hex[:6]}"
    await products.create_product(app, {"name": product, "platform": name, "plan": PLAN}, ACTOR)
    events = Events()
    on_service_event("*", events)
    try:
        yield World(app=app, platform=name, url=url, product=product, events=events)
    finally:
        remove_service_listener("*", events)
        DummyCloud.reset(url)
        await app.close()
