"""Proxmox services through the platform-neutral lifecycle functions and the WHMCS bridge API.

Billing, the JSON API and the CLI call ``create_service``/``terminate_service``/... without knowing
the platform type; these tests prove a Proxmox product reaches the ``proxmox.*`` workflows that
way (and never the single-call ``service.*`` path, which Proxmox refuses), on the simulator, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from proxmox_flow_support import ACTOR, World, build_world
from pydantic import SecretStr

from vpsbridge.billing.whmcs.signing import signed_headers
from vpsbridge.services import provisioning as prov
from vpsbridge.services.errors import Conflict
from vpsbridge.services.provisioning.credentials import read_credentials
from vpsbridge.services.provisioning.proxmox import ProxmoxFlavour
from vpsbridge.web.app import create_app

SECRET = "bridge-secret-for-proxmox-tests-0123"


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    w = await build_world(
        db_url, tmp_path, plan={"cpu_cores": 2, "memory_mb": 2048, "disk_gb": 20, "template": 9000}
    )
    w.app.settings.bridge_secret = SecretStr(SECRET)
    yield w
    await w.app.close()


async def kinds(world: World) -> list[str]:
    return [j.kind for j in await world.jobs()]


async def test_generic_lifecycle_runs_the_proxmox_workflows(world: World) -> None:
    out = await prov.create_service(
        world.app, {"billing_service_id": "g1", "client_id": "c1", "product": world.product_id}, ACTOR
    )
    assert out.status == "provisioning"
    assert await kinds(world) == ["proxmox.deploy"]
    await world.run()
    service = await prov.get_service(world.app, "billing:g1")
    assert service.status == "active", service.last_error
    assert service.server is not None
    vm = world.sim.vms[int(service.server.external_id or 0)]
    assert vm.status == "running"

    suspended = await prov.suspend_service(world.app, "billing:g1", ACTOR)
    assert suspended.outcome == "queued"
    await world.run()
    assert vm.status == "stopped"
    assert (await prov.get_service(world.app, "billing:g1")).status == "suspended"

    await prov.unsuspend_service(world.app, "billing:g1", ACTOR)
    await world.run()
    assert vm.status == "running"
    assert (await prov.get_service(world.app, "billing:g1")).status == "active"

    await prov.power_service(world.app, "billing:g1", "stop", ACTOR)
    await world.run()
    assert vm.status == "stopped"
    await prov.power_service(world.app, "billing:g1", "start", ACTOR)
    await world.run()
    assert vm.status == "running"

    changed = await prov.change_package(world.app, "billing:g1", {"options": {"RAM": "4"}}, ACTOR)
    assert changed.outcome == "queued"
    await world.run()
    assert vm.config["memory"] == "4096"

    rebuilt = await prov.rebuild_service(world.app, "billing:g1", ACTOR, os_template="9000")
    assert rebuilt.outcome == "queued"
    await world.run()
    assert (await prov.get_service(world.app, "billing:g1")).status == "active"

    terminated = await prov.terminate_service(world.app, "billing:g1", ACTOR, delay_seconds=0)
    assert terminated.outcome == "queued"
    await world.run()
    assert (await prov.get_service(world.app, "billing:g1")).status == "terminated"
    assert int(service.server.external_id or 0) not in world.sim.vms
    assert not [k for k in await kinds(world) if k.startswith("service.")]


async def test_password_reset_waits_for_the_workflow(world: World) -> None:
    await prov.create_service(
        world.app, {"billing_service_id": "g2", "client_id": "c1", "product": world.product_id}, ACTOR
    )
    await world.run()
    service = await prov.get_service(world.app, "billing:g2")
    assert service.server is not None
    before = await read_credentials(world.app, service.server.id)
    assert before is not None
    reset = asyncio.create_task(prov.reset_password(world.app, "billing:g2", ACTOR))
    while not await world.jobs("proxmox.reset_password"):
        await asyncio.sleep(0.05)
    assert not reset.done()  # it waits for the workflow, which needs a worker
    await world.run()
    creds = await reset
    assert creds.password != before["password"]
    assert creds.password == (await read_credentials(world.app, service.server.id) or {})["password"]


async def test_password_reset_without_a_worker_says_it_is_queued(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await prov.create_service(
        world.app, {"billing_service_id": "g3", "client_id": "c1", "product": world.product_id}, ACTOR
    )
    await world.run()
    monkeypatch.setattr(ProxmoxFlavour, "reset_wait_seconds", 0.3)
    with pytest.raises(Conflict) as caught:
        await prov.reset_password(world.app, "billing:g3", ACTOR)
    assert "is queued" in str(caught.value)


async def bridge_call(client: httpx2.AsyncClient, name: str, payload: dict[str, Any]) -> httpx2.Response:
    path = f"/bridge/v1/module/{name}"
    body = json.dumps(payload).encode()
    headers = signed_headers(SECRET, "POST", path, body, nonce=uuid.uuid4().hex)
    return await client.post(path, content=body, headers=headers)


def whmcs_params(service: int) -> dict[str, Any]:
    return {
        "params": {
            "serviceid": service,
            "userid": 91,
            "pid": "p1",
            "domain": f"vps{service}.example.net",
            "configoption1": "pve",
            "clientsdetails": {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.net"},
            "customfields": {"Initial Operating System": "9000"},
            "configoptions": {"RAM": "4|4 GB"},
        },
        "product": {"id": "p1", "name": "kvm-2g", "stockcontrol": "0"},
    }


async def test_a_whmcs_order_for_a_proxmox_product_deploys_to_active(world: World) -> None:
    app = create_app(context=world.app)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client,
    ):
        created = await bridge_call(client, "CreateAccount", whmcs_params(700))
        assert created.status_code == 200, created.text
        assert created.json()["service"]["status"] == "provisioning"
        await world.run()
        service = await prov.get_service(world.app, "billing:700")
        assert service.status == "active", service.last_error
        assert service.server is not None
        vm = world.sim.vms[int(service.server.external_id or 0)]
        assert vm.config["memory"] == "4096"
        assert service.server.hostname == "vps700.example.net"

        terminated = await bridge_call(client, "TerminateAccount", whmcs_params(700))
        assert terminated.status_code == 200, terminated.text
        assert terminated.json()["outcome"] == "queued"
        await world.run()
        assert (await prov.get_service(world.app, "billing:700")).status == "terminated"
