"""Shared set-up of the portal tests: two clients with provisioned servers on the dummy platform
(plus one service not yet provisioned), an ASGI client of the whole web app, and sign-in helpers."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2 as httpx
import pytest
from provisioning_support import ACTOR, World, world
from sqlalchemy import update

from vpsbridge.services import portal
from vpsbridge.services.provisioning.lifecycle import create_service
from vpsbridge.store.models import Server, Service
from vpsbridge.web.app import create_app

ORIGIN = "https://portal.test"
HOSTILE = "<script>alert(1)</script>\"'\u202eevil"


@dataclass
class PortalWorld:
    world: World
    mine: int
    other: int
    pending: int

    @property
    def ctx(self):  # type: ignore[no-untyped-def]
        return self.world.app


async def make_portal_world(base: World) -> PortalWorld:
    world = base
    mine = await create_service(world.app, world.create_request("7001", client_id="501"), ACTOR)
    other = await create_service(world.app, world.create_request("7002", client_id="777"), ACTOR)
    await world.drain()
    async with world.app.db.session() as s:
        pending = Service(client_id="501", billing_service_id="7003", status="provisioning", product_id=None)
        s.add(pending)
        await s.flush()
        pending_id = pending.id
        # a hostile display name must render escaped everywhere
        srv = (await s.get(Service, mine.id)).server_id  # type: ignore[union-attr]
        await s.execute(update(Server).where(Server.id == srv).values(name=HOSTILE))
    return PortalWorld(world=world, mine=mine.id, other=other.id, pending=pending_id)


def app_client(pw: PortalWorld) -> httpx.AsyncClient:
    app = create_app(context=pw.ctx, migrate=False)
    app.state.ctx = pw.ctx
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN, follow_redirects=False)


async def sign_in(client: httpx.AsyncClient, pw: PortalWorld, service_id: int) -> str:
    """Sign in through a one-time link; returns the page's CSRF token."""
    link = await portal.mint_portal_link(pw.ctx, service_id, ACTOR, base_url=ORIGIN)
    answer = await client.get(link.url.removeprefix(ORIGIN))
    assert answer.status_code == 303, answer.text
    page = await client.get(answer.headers["location"])
    assert page.status_code == 200, page.text
    return page.text.split('name="csrf-token" content="')[1].split('"')[0]


@pytest.fixture
async def pworld(world: World) -> PortalWorld:
    return await make_portal_world(world)


__all__ = ["World", "pworld", "world"]
