"""Proxmox package changes and day-2 actions against the simulator: grow only, never shrink, detach
only when confirmed, pending CPU/RAM applied by a reboot, suspend/unsuspend, password reset, rebuild."""

from __future__ import annotations

from typing import Any

from proxmox_flow_support import ACTOR, World
from proxmox_flow_support import world as world

from vpsbridge.core.disks import parse_drive
from vpsbridge.services.provisioning.credentials import read_credentials
from vpsbridge.services.provisioning.proxmox import (
    REBUILD,
    RESET_PASSWORD,
    SUSPEND,
    UNSUSPEND,
    change_proxmox_package,
    queue_action,
)
from vpsbridge.sim.proxmox.state import SimVM


async def deployed(world: World, billing: str, **extra: Any) -> tuple[int, int, SimVM]:
    out = await world.create(billing, **extra)
    await world.run()
    service = await world.service(out.id)
    assert service.status == "active", service.last_error
    server = await world.server(service.server_id or 0)
    return out.id, server.id, world.sim.vms[int(server.external_id or 0)]


def gb(vm: SimVM, key: str) -> float:
    return (parse_drive(key, vm.config[key]).size or 0) / 1024**3


async def test_upgrade_grows_and_reboots_to_apply_cpu_and_ram(world: World) -> None:
    service_id, _server_id, vm = await deployed(world, "up", options={"Additional Disk": "10"})
    answer = await change_proxmox_package(
        world.app,
        service_id,
        {
            "options": {
                "CPU Cores": "4",
                "RAM": "8",
                "System Disk": "60",
                "Additional Disk": "20",
                "IPv4 Addresses": "2",
            }
        },
        ACTOR,
    )
    assert answer.outcome == "queued"
    assert answer.warnings == []
    await world.run()
    assert (vm.config["cores"], vm.config["memory"]) == ("4", "8192")
    assert vm.pending == {}  # the reboot applied them
    assert gb(vm, "scsi0") == 60
    assert gb(vm, "scsi1") == 20
    assert len(vm.ipsets["ipfilter-net0"]) == 2
    job = (await world.jobs("proxmox.change_package"))[0]
    assert job.status == "succeeded"
    assert (job.result or {}).get("rebooted_for")
    assert (job.result or {}).get("new_addresses") == ["192.0.2.3"]


async def test_downgrade_never_shrinks_and_keeps_unconfirmed_disk(world: World) -> None:
    service_id, _server_id, vm = await deployed(
        world, "down", options={"System Disk": "40", "Additional Disk": "10"}
    )
    answer = await change_proxmox_package(
        world.app,
        service_id,
        {"options": {"System Disk": "20", "Additional Disk": "0"}},
        ACTOR,
        allow_smaller_disks=True,  # an operator's override: the workflow keeps the disks
    )
    assert any("never shrunk" in w for w in answer.warnings)
    assert any("explicit confirmation" in w for w in answer.warnings)
    await world.run()
    assert gb(vm, "scsi0") == 40
    assert "scsi1" in vm.config
    job = (await world.jobs("proxmox.change_package"))[0]
    result = job.result or {}
    assert result["system_disk"].startswith("skipped: scsi0 stays at 40 GB")
    assert "not confirmed" in result["detach_additional_disk"]
    assert result["resources"].startswith("skipped")
    service = await world.service(service_id)
    assert any("never shrunk" in w for w in (service.lifecycle or {}).get("warnings", []))


async def test_confirmed_detach_destroys_the_additional_disk(world: World) -> None:
    service_id, _server_id, vm = await deployed(world, "detach", options={"Additional Disk": "10"})
    volume = parse_drive("scsi1", vm.config["scsi1"]).file
    await change_proxmox_package(
        world.app, service_id, {"options": {"Additional Disk": "0"}}, ACTOR, confirm_detach=True
    )
    await world.run()
    assert "scsi1" not in vm.config
    assert not any(k.startswith("unused") for k in vm.config)
    storage = world.sim.nodes[vm.node].storages[volume.split(":", 1)[0]]
    assert volume.split(":", 1)[1] not in storage.volumes


async def test_suspend_and_unsuspend(world: World) -> None:
    service_id, _server_id, vm = await deployed(world, "susp")
    out = await queue_action(world.app, service_id, SUSPEND, ACTOR, allowed=("active",))
    assert out.service.status == "suspended"
    await world.run()
    assert vm.status == "stopped"
    assert vm.config.get("onboot") == "0"
    await queue_action(world.app, service_id, UNSUSPEND, ACTOR, allowed=("suspended",))
    await world.run()
    assert vm.status == "running"
    assert vm.config.get("onboot") == "1"
    assert (await world.service(service_id)).status == "active"


async def test_password_reset_through_cloudinit(world: World) -> None:
    service_id, server_id, vm = await deployed(world, "pw")
    before = await read_credentials(world.app, server_id)
    await queue_action(world.app, service_id, RESET_PASSWORD, ACTOR, allowed=("active",))
    await world.run()
    after = await read_credentials(world.app, server_id)
    assert before
    assert after
    assert before["password"] != after["password"]
    assert vm.status == "running"
    assert (await world.jobs(RESET_PASSWORD))[0].status == "succeeded"


async def test_rebuild_keeps_vmid_addresses_macs_and_the_additional_disk(world: World) -> None:
    service_id, server_id, vm = await deployed(
        world, "rb", options={"System Disk": "25", "Additional Disk": "10"}
    )
    mac = vm.config["net0"]
    ipconfig = vm.config["ipconfig0"]
    data_disk = vm.config["scsi1"]
    data_volume = parse_drive("scsi1", data_disk).file
    old_system = parse_drive("scsi0", vm.config["scsi0"]).file
    node = world.sim.nodes[vm.node]
    sid, volname = data_volume.split(":", 1)
    node.storages[sid].volumes[volname] += 123  # what the customer stored there
    data_size = node.storages[sid].volumes[volname]
    vmids_before = set(world.sim.vms)
    await queue_action(world.app, service_id, REBUILD, ACTOR, allowed=("active",), os_template="9001")
    await world.run()
    job = (await world.jobs(REBUILD))[0]
    assert job.status == "succeeded", job.last_error
    assert world.sim.vms[vm.vmid] is vm  # the same VM: only its system disk was replaced
    assert vm.config["scsi1"] == data_disk
    assert node.storages[sid].volumes[volname] == data_size
    new_system = parse_drive("scsi0", vm.config["scsi0"]).file
    assert new_system != old_system
    assert new_system.startswith(f"{old_system.split(':', 1)[0]}:")
    assert f"vm-{vm.vmid}-" in new_system
    old_sid, old_name = old_system.split(":", 1)
    assert old_name not in node.storages[old_sid].volumes  # the old system disk is purged
    assert not [k for k in vm.config if k.startswith("unused")]
    assert set(world.sim.vms) == vmids_before  # the staging clone is gone
    assert vm.config["net0"] == mac
    assert vm.config["ipconfig0"] == ipconfig
    assert gb(vm, "scsi0") == 25
    assert vm.status == "running"
    assert any(t.type == "qmclone" and t.id == "9001" for t in world.sim.tasks.values())
    assert any(t.type == "qmmove" for t in world.sim.tasks.values())
    # the template lives on another node: the staging clone was brought to the VM's node
    assert any(t.type == "qmigrate" and t.id != str(vm.vmid) for t in world.sim.tasks.values())
    assert len(await world.addresses(server_id)) == 1
