"""Shared set-up for the VirtFusion driver tests: a seeded simulator and a driver wired to it in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2

from vpsbridge.platforms.models import ServerSpec
from vpsbridge.platforms.virtfusion import VirtFusionPlatform
from vpsbridge.services import platforms
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.sim.virtfusion import VirtFusionState, create_app

TOKEN = "sim-token"
PANEL = "https://panel.example.test"


class TimedASGITransport(httpx2.AsyncBaseTransport):
    """ASGI transport that enforces a read timeout (the in-process transport ignores timeouts) and
    keeps every exchange so contract tests can validate requests and responses."""

    def __init__(self, app: Any, *, read_timeout: float = 2.0) -> None:
        self.inner = httpx2.ASGITransport(app=app)
        self.read_timeout = read_timeout
        self.exchanges: list[tuple[httpx2.Request, httpx2.Response, bytes]] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            response = await asyncio.wait_for(self.inner.handle_async_request(request), self.read_timeout)
        except TimeoutError:
            raise httpx2.ReadTimeout("simulated read timeout", request=request) from None
        body = await response.aread()
        self.exchanges.append((request, response, body))
        return httpx2.Response(response.status_code, headers=response.headers, content=body, request=request)


def make_sim(**kwargs: Any) -> tuple[VirtFusionState, Any]:
    state = VirtFusionState(
        task_seconds=kwargs.pop("task_seconds", 0.05),
        ipv6_delay_seconds=kwargs.pop("ipv6_delay_seconds", 0.05),
        **kwargs,
    ).seed_demo()
    return state, create_app(state)


async def add_vf_platform(app: AppContext, actor: Actor, *, name: str = "vf") -> None:
    """The simulated panel as a platform of ``app`` (fast retries, hypervisor group 1); the app's
    ``EXTRAS_TRANSPORTS`` must route ``PANEL`` to the simulator."""
    await platforms.create_platform(
        app,
        {
            "name": name,
            "type": "virtfusion",
            "url": PANEL,
            "credentials": {"token": TOKEN},
            "settings": {"max_retries": 1, "retry_wait_initial": 0.01, "hypervisor_group_id": 1},
        },
        actor,
    )


def make_driver(
    app: Any, *, token: str = TOKEN, settings: dict[str, Any] | None = None, read_timeout: float = 2.0
) -> tuple[VirtFusionPlatform, TimedASGITransport]:
    transport = TimedASGITransport(app, read_timeout=read_timeout)
    driver = VirtFusionPlatform(
        url=PANEL,
        credentials={"token": token},
        transport=transport,
        settings={
            "max_retries": 1,
            "retry_wait_initial": 0.01,
            "hypervisor_group_id": 1,
            "package_id": 1,
            **(settings or {}),
        },
    )
    return driver, transport


def spec(**overrides: Any) -> ServerSpec:
    values: dict[str, Any] = {
        "hostname": "web1.example.net",
        "name": "Web 1",
        "cpu_cores": 1,
        "memory_mb": 1024,
        "disk_gb": 25,
        "owner": "42",
        "placement": {"hypervisor_group_id": 1},
        "extra": {"package_id": 1, "user": {"name": "Ada Lovelace", "email": "ada@example.net"}},
    }
    values.update(overrides)
    return ServerSpec(**values)


async def wait_for(check: Callable[[], Any], *, timeout: float = 3.0, interval: float = 0.02) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
