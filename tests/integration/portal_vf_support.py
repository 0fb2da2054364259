"""A client portal on the VirtFusion simulator: one active service of client 501 on a VirtFusion
platform whose API is served in-process, a web client of the whole app, and sign-in through a link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from provisioning_support import ACTOR, fast_settings
from virtfusion_support import PANEL, TimedASGITransport, add_vf_platform, make_sim

from vpsbridge.jobs.worker import Worker
from vpsbridge.services import portal, products
from vpsbridge.services.context import AppContext
from vpsbridge.services.provisioning import create_service
from vpsbridge.services.provisioning.drivers import EXTRAS_TRANSPORTS
from vpsbridge.sim.virtfusion import VirtFusionState
from vpsbridge.web.app import create_app

ORIGIN = "https://portal.test"


@dataclass
class VfPortal:
    app: AppContext
    sim: VirtFusionState
    service_id: int


@pytest.fixture
async def vf(db_url: str, tmp_path: Path) -> AsyncIterator[VfPortal]:
    """A VirtFusion platform on the simulator with one active service of client 501."""
    sim, asgi = make_sim()
    app = await AppContext.create(fast_settings(db_url, tmp_path))
    app.extras[EXTRAS_TRANSPORTS] = {PANEL: TimedASGITransport(asgi, read_timeout=1.0)}
    await add_vf_platform(app, ACTOR)
    await products.create_product(
        app,
        {
            "name": "vf-1g",
            "platform": "vf",
            "placement": {"hypervisor_group_id": 1},
            "plan": {"package_id": 1},
        },
        ACTOR,
    )
    request = {
        "billing_service_id": "6101",
        "client_id": "501",
        "client": {"name": "Ada Lovelace", "email": "ada@example.net"},
        "product": "vf-1g",
        "os_template": "1",
        "hostname": "vf6101.example.net",
    }
    try:
        out = await create_service(app, request, ACTOR)
        await Worker(app, concurrency=4, periodic=False, wakeup=False).run_until_idle(timeout=30)
        yield VfPortal(app, sim, out.id)
    finally:
        await app.close()


def vf_client(vf: VfPortal) -> httpx.AsyncClient:
    web = create_app(context=vf.app, migrate=False)
    web.state.ctx = vf.app
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=ORIGIN, follow_redirects=False)


async def vf_sign_in(client: httpx.AsyncClient, vf: VfPortal) -> tuple[str, httpx.Response]:
    """Sign in through a one-time link; (the page's CSRF token, the overview response)."""
    link = await portal.mint_portal_link(vf.app, vf.service_id, ACTOR, base_url=ORIGIN)
    answer = await client.get(link.url.removeprefix(ORIGIN))
    assert answer.status_code == 303, answer.text
    page = await client.get(answer.headers["location"])
    assert page.status_code == 200, page.text
    return page.text.split('name="csrf-token" content="')[1].split('"')[0], page


__all__ = ["PANEL", "VfPortal", "vf", "vf_client", "vf_sign_in"]
