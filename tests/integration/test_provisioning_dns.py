"""DNS on the generic lifecycle: a dummy-platform deploy writes PTRs, a rename moves them, a terminate
removes them - through the HestiaCP simulator as the DNS provider, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx2
from provisioning_support import ACTOR, PLAN, World, world
from rdns_support import run_jobs

from vpsbridge.services import dns_providers, products
from vpsbridge.services.dns import sync_zones
from vpsbridge.services.dns.catalog import EXTRAS_TRANSPORTS
from vpsbridge.services.provisioning import (
    create_service,
    get_service,
    rename_service,
    terminate_service,
)
from vpsbridge.sim.hestiacp import HestiaState, create_app

__all__ = ["world"]

ACCESS, SECRET = "TESTACCESSKEY00000001", "test-secret-key-0123456789abcdef0123456"
REVERSE, FORWARD = "2.0.192.in-addr.arpa", "example.net"


async def hestia(w: World) -> HestiaState:
    state = HestiaState(keys={ACCESS: (SECRET, "admin")})
    for zone in (REVERSE, FORWARD):
        state.run("admin", "v-add-dns-domain", ["admin", zone, "192.0.2.53"])
    w.app.extras[EXTRAS_TRANSPORTS] = {"hestiacp": httpx2.ASGITransport(app=create_app(state))}
    await dns_providers.create_dns_provider(
        w.app,
        {
            "name": "hestia",
            "type": "hestiacp",
            "url": "https://hestia.example.test:8083",
            "credentials": {"access_key": ACCESS, "secret_key": SECRET},
            "settings": {"user": "admin", "default_ttl": 3600},
        },
        ACTOR,
    )
    await sync_zones(w.app, "hestia")
    return state


def ptrs(state: HestiaState) -> dict[str, str]:
    records = state.domains["admin"][REVERSE].records.values()
    return {r["RECORD"]: r["VALUE"] for r in records if r["TYPE"] == "PTR"}


def a_records(state: HestiaState) -> set[tuple[str, str]]:
    records = state.domains["admin"][FORWARD].records.values()
    return {(r["RECORD"], r["VALUE"]) for r in records if r["TYPE"] == "A" and r["RECORD"] != "@"}


async def test_deploy_rename_terminate_keep_dns_in_step(world: World) -> None:
    state = await hestia(world)
    await products.create_product(
        world.app,
        {"name": "dns-vps", "platform": world.platform, "plan": PLAN, "dns_zone": FORWARD + "."},
        ACTOR,
    )
    out = await create_service(
        world.app, {**world.create_request("d1", hostname="web1.example.net"), "product": "dns-vps"}, ACTOR
    )
    await world.drain()
    await run_jobs(world.app)
    service = await get_service(world.app, out.id)
    assert service.status == "active", service.last_error
    assert service.server is not None
    ip = service.server.ipv4[0]
    last = ip.rsplit(".", 1)[1]
    assert ptrs(state) == {last: "web1.example.net."}
    assert a_records(state) == {("web1", ip)}

    await rename_service(world.app, out.id, ACTOR, hostname="web2.example.net")
    await run_jobs(world.app)
    assert ptrs(state) == {last: "web2.example.net."}
    assert a_records(state) == {("web2", ip)}

    await terminate_service(world.app, out.id, ACTOR, delay_seconds=0)
    await world.drain()
    await run_jobs(world.app)
    assert (await get_service(world.app, out.id)).status == "terminated"
    assert ptrs(state) == {}
    assert a_records(state) == set()


async def test_dns_trouble_never_fails_a_deploy(world: World) -> None:
    state = await hestia(world)
    state.keys.clear()  # the panel now refuses our key
    out = await create_service(world.app, world.create_request("d2"), ACTOR)
    await world.drain()
    await run_jobs(world.app)
    assert (await get_service(world.app, out.id)).status == "active"
