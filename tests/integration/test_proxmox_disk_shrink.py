"""Disks are never shrunk: a Proxmox package change that would shrink one is refused, through the
platform-neutral lifecycle and through WHMCS's signed ChangePackage; the upgrade-page operation says
which disk choices to disable. On the simulator, SQLite and PostgreSQL."""

from __future__ import annotations

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
from vpsbridge.core.disks import parse_drive
from vpsbridge.services import provisioning as prov
from vpsbridge.services.errors import Invalid
from vpsbridge.web.app import create_app

SECRET = "bridge-secret-for-disk-shrink-0123456"


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    w = await build_world(
        db_url, tmp_path, plan={"cpu_cores": 1, "memory_mb": 1024, "disk_gb": 20, "template": 9000}
    )
    w.app.settings.bridge_secret = SecretStr(SECRET)
    yield w
    await w.app.close()


async def active(world: World, billing: str, options: dict[str, str]) -> int:
    await prov.create_service(
        world.app,
        {"billing_service_id": billing, "client_id": "c1", "product": world.product_id, "options": options},
        ACTOR,
    )
    await world.run()
    service = await prov.get_service(world.app, f"billing:{billing}")
    assert service.status == "active", service.last_error
    assert service.server is not None
    return int(service.server.external_id or 0)


def gb(world: World, vmid: int, key: str) -> float:
    vm = world.sim.vms[vmid]
    return (parse_drive(key, vm.config[key]).size or 0) / 1024**3


async def test_lifecycle_refuses_a_smaller_system_disk(world: World) -> None:
    vmid = await active(world, "s1", {"System Disk": "40", "Additional Disk": "10"})
    with pytest.raises(Invalid) as caught:
        await prov.change_package(
            world.app, "billing:s1", {"options": {"System Disk": "30", "Additional Disk": "10"}}, ACTOR
        )
    message = str(caught.value)
    assert "System Disk cannot shrink from 40 GB to 30 GB" in message
    assert "Additional Disk" not in message
    assert caught.value.field == "options"
    # Nothing was queued and nothing changed: the service keeps what it was sold.
    assert await world.jobs("proxmox.change_package") == []
    service = await prov.get_service(world.app, "billing:s1")
    assert service.options == {"System Disk": "40", "Additional Disk": "10"}
    assert gb(world, vmid, "scsi0") == 40


async def test_lifecycle_refuses_a_smaller_or_removed_additional_disk(world: World) -> None:
    await active(world, "s2", {"Additional Disk": "20"})
    with pytest.raises(Invalid) as smaller:
        await prov.change_package(world.app, "billing:s2", {"options": {"disk2": "10"}}, ACTOR)
    assert "Additional Disk cannot shrink from 20 GB to 10 GB" in str(smaller.value)
    with pytest.raises(Invalid) as removed:
        await prov.change_package(world.app, "billing:s2", {"options": {"Additional Disk": "0"}}, ACTOR)
    assert "remove the 20 GB additional disk" in str(removed.value)
    assert "explicit confirmation" in str(removed.value)
    assert await world.jobs("proxmox.change_package") == []


async def test_growing_and_equal_sizes_still_go_through(world: World) -> None:
    vmid = await active(world, "s3", {"System Disk": "30", "Additional Disk": "10"})
    out = await prov.change_package(
        world.app,
        "billing:s3",
        {"options": {"System Disk": "30", "Additional Disk": "15", "RAM": "2"}},
        ACTOR,
    )
    assert out.outcome == "queued"
    assert out.warnings == []
    await world.run()
    assert gb(world, vmid, "scsi0") == 30
    assert gb(world, vmid, "scsi1") == 15
    assert world.sim.vms[vmid].config["memory"] == "2048"


async def bridge_call(client: httpx2.AsyncClient, kind: str, name: str, payload: dict[str, Any]) -> Any:
    path = f"/bridge/v1/{kind}/{name}"
    body = json.dumps(payload).encode()
    headers = signed_headers(SECRET, "POST", path, body, nonce=uuid.uuid4().hex)
    return await client.post(path, content=body, headers=headers)


def whmcs_params(
    service: int, options: dict[str, str], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "params": {
            "serviceid": service,
            "userid": 91,
            "pid": "p1",
            "domain": f"vps{service}.example.net",
            "configoption1": "pve",
            "clientsdetails": {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.net"},
            "customfields": {"Initial Operating System": "9000"},
            "configoptions": options,
        },
        "product": {"id": "p1", "name": "kvm-1g", "stockcontrol": "0"},
        "extra": extra or {},
    }


async def test_whmcs_change_package_gets_the_refusal_and_the_upgrade_choices(world: World) -> None:
    app = create_app(context=world.app)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client,
    ):
        sold = {"System Disk": "40|40 GB", "Additional Disk": "20|20 GB"}
        created = await bridge_call(client, "module", "CreateAccount", whmcs_params(810, sold))
        assert created.status_code == 200, created.text
        await world.run()
        assert (await prov.get_service(world.app, "billing:810")).status == "active"

        smaller = {"System Disk": "20|20 GB", "Additional Disk": "20|20 GB"}
        refused = await bridge_call(client, "module", "ChangePackage", whmcs_params(810, smaller))
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert "System Disk cannot shrink from 40 GB to 20 GB" in error["message"]
        assert await world.jobs("proxmox.change_package") == []

        bigger = {"System Disk": "60|60 GB", "Additional Disk": "20|20 GB"}
        accepted = await bridge_call(client, "module", "ChangePackage", whmcs_params(810, bigger))
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["ok"] is True

        options = [
            {
                "id": 7,
                "name": "System Disk",
                "choices": [{"id": 70 + n, "label": f"{n * 20}|{n * 20} GB"} for n in range(1, 5)],
            },
            {
                "id": 8,
                "name": "disk2|Extra storage",  # a legacy prefix
                "choices": [
                    {"id": 80, "label": "0"},
                    {"id": 81, "label": "20 GB"},
                    {"id": 82, "label": "1 TB"},
                ],
            },
            {"id": 9, "name": "RAM", "choices": [{"id": 90, "label": "1 GB"}]},
        ]
        answer = await bridge_call(
            client, "hook", "UpgradeDiskChoices", whmcs_params(810, bigger, {"options": options})
        )
        assert answer.status_code == 200, answer.text
        data = answer.json()
        # The service now has 60 GB: 20 and 40 are smaller; the stored options were replaced.
        assert data["disks"] == {"System Disk": 60, "Additional Disk": 20}
        by_id = {o["id"]: o for o in data["options"]}
        assert set(by_id) == {7, 8}
        assert by_id[7]["disabled"] == [71, 72]
        assert by_id[7]["allowed"] == [73, 74]
        assert "60 GB" in by_id[7]["warning"]
        assert by_id[8]["resource"] == "additional_disk_gb"
        assert by_id[8]["disabled"] == [80]
        assert by_id[8]["allowed"] == [81, 82]
