"""Proxmox workflows against the simulator, end to end through the job engine (SQLite and PostgreSQL):
deploy with every resource, IPv6-only, lock timeouts, a node lost mid-migration, nextid races,
terminate with a guest ignoring ACPI, a reused VMID that must survive, and error_terminate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from proxmox_flow_support import ACTOR, World, build_world
from proxmox_flow_support import world as world

from vpsbridge.core.disks import parse_drive, parse_property_string, system_disk
from vpsbridge.platforms.proxmox import read_marker
from vpsbridge.services.provisioning.credentials import read_credentials
from vpsbridge.services.provisioning.events import ServiceEvent, on_service_event, remove_service_listener
from vpsbridge.services.provisioning.proxmox import (
    create_proxmox_service,
    mark_removed,
    retry_terminate,
    terminate_proxmox_service,
)
from vpsbridge.sim.proxmox.state import SimVM


@pytest.fixture
def events() -> Any:
    seen: list[ServiceEvent] = []

    async def listen(_ctx: Any, event: ServiceEvent) -> None:
        seen.append(event)

    on_service_event("*", listen)
    yield seen
    remove_service_listener("*", listen)


def vm_of(world: World, vmid: str | int) -> SimVM:
    return world.sim.vms[int(vmid)]


async def deployed(world: World, billing: str, **extra: Any) -> tuple[int, int, SimVM]:
    out = await world.create(billing, **extra)
    await world.run()
    service = await world.service(out.id)
    assert service.status == "active", service.last_error
    server = await world.server(service.server_id or 0)
    return out.id, server.id, vm_of(world, server.external_id or 0)


async def test_deploy_builds_the_planned_vm(world: World, events: list[ServiceEvent]) -> None:
    options = {
        "RAM": "4",
        "System Disk": "30",
        "Additional Disk": "10",
        "Additional Disk Read IOPS": "800",
        "System Disk Write Bandwidth": "50",
        "IPv4 Addresses": "2",
        "IPv6 Addresses": "1",
        "cpu": "3",
    }
    out = await world.create("b1", options=options, ssh_keys=["ssh-ed25519 AAAAC3Nz user@host"])
    # CreateAccount already reserved the addresses, before any worker ran.
    reserved = await world.addresses(out.server.id if out.server else None)
    assert [a.address for a in reserved] == ["192.0.2.2", "192.0.2.3", "2001:db8:1::2"]
    assert out.status == "provisioning"

    await world.run()
    service = await world.service(out.id)
    assert service.status == "active", service.last_error
    server = await world.server(service.server_id or 0)
    vm = vm_of(world, server.external_id or 0)
    config = vm.config
    assert vm.status == "running"
    assert (config["cores"], config["memory"]) == ("3", "4096")
    boot = system_disk(config)
    assert boot == "scsi0"
    assert parse_drive("scsi0", config["scsi0"]).size == 30 * 1024**3
    assert parse_drive("scsi0", config["scsi0"]).options.get("mbps_wr") == "50"
    extra = parse_drive("scsi1", config["scsi1"])
    assert extra.size == 10 * 1024**3
    assert extra.options.get("iops_rd") == "800"
    assert "rate=12.5" in config["net0"]
    assert "bridge=vmbr0" in config["net0"]
    ipconfig = parse_property_string(config["ipconfig0"])
    assert ipconfig == {
        "ip": "192.0.2.2/24",
        "gw": "192.0.2.1",
        "ip6": "2001:db8:1::2/64",
        "gw6": "2001:db8:1::1",
    }
    assert config["nameserver"] == "192.0.2.53"
    assert config["ciuser"] == "root"
    assert "sshkeys" in config
    assert read_marker(config) == server.last_known["owner"]
    assert set(vm.ipsets["ipfilter-net0"]) == {"192.0.2.2/32", "192.0.2.3/32", "2001:db8:1::2/128"}
    assert vm.firewall.get("enable") == "1"
    assert vm.firewall.get("ipfilter") == "1"
    # Migrated off the template node to the node with the most free RAM.
    assert vm.node != "pve1"
    assert server.node == vm.node
    creds = await read_credentials(world.app, server.id)
    assert creds is not None
    assert creds["username"] == "root"
    assert len(creds["password"]) >= 16
    assert "cipassword" in config
    provisioned = [e for e in events if e.kind == "provisioned"]
    assert len(provisioned) == 1
    assert provisioned[0].details["ipv4"] == ["192.0.2.2", "192.0.2.3"]
    assert "inside the operating system" in provisioned[0].details["notice"]
    deploy = (await world.jobs("proxmox.deploy"))[0]
    assert deploy.status == "succeeded"
    names = [s.name for s in await world.steps(deploy.id) if s.outcome == "done"]
    assert names[:4] == ["allocate_ips", "dns", "clone", "migrate"]
    assert names[-1] == "report"


async def test_create_is_idempotent_per_billing_service(world: World) -> None:
    first = await world.create("b1")
    again = await world.create("b1")
    assert first.id == again.id
    assert len(await world.addresses()) == 1 + 0  # one IPv4, no IPv6 in the plan
    assert len(await world.jobs("proxmox.deploy")) == 1


async def test_ipv6_only_vm_and_io_limits_absent(world: World) -> None:
    _sid, _srv, vm = await deployed(world, "b6", options={"IPv4 Addresses": "0", "IPv6 Addresses": "1"})
    assert vm.config["ipconfig0"] == "ip6=2001:db8:1::2/64,gw6=2001:db8:1::1"
    assert "mbps" not in vm.config["scsi0"]
    assert "iops" not in vm.config["scsi0"]
    assert set(vm.ipsets["ipfilter-net0"]) == {"2001:db8:1::2/128"}


async def test_busy_vm_locks_are_waited_out(world: World) -> None:
    world.sim.file_lock_probability = 0.7  # beyond what the client retries itself
    await deployed(world, "b-lock")
    deploy = (await world.jobs("proxmox.deploy"))[0]
    waits = [s for s in await world.steps(deploy.id) if s.outcome == "wait" and "lock" in (s.detail or "")]
    assert waits, "the simulated lock timeouts were never hit"


async def test_node_offline_mid_migrate_stays_on_template_node(db_url: str, tmp_path: Path) -> None:
    w = await build_world(db_url, tmp_path, sim_time_scale=1.0)
    w.sim.durations.update({k: 0.0 for k in w.sim.durations})
    w.sim.durations["qmigrate"] = 1.5
    try:
        out = await w.create("b-mig")
        runner = asyncio.create_task(w.run(timeout=60))
        for _ in range(400):
            locked = [vm for vm in w.sim.vms.values() if vm.config.get("lock") == "migrate"]
            if locked:
                break
            await asyncio.sleep(0.01)
        assert locked, "the migration never started"
        target = next(t for t in w.sim.tasks.values() if t.type == "qmigrate")
        target_node = target.log[-1].split("'")[1]
        w.sim.set_node_online(target_node, False)
        await runner
        service = await w.service(out.id)
        assert service.status == "active", service.last_error
        server = await w.server(service.server_id or 0)
        assert server.node == "pve1"
        assert w.sim.vms[int(server.external_id or 0)].node == "pve1"
        deploy = (await w.jobs("proxmox.deploy"))[0]
        assert "stays on pve1" in str((deploy.result or {}).get("migrate"))
    finally:
        await w.app.close()


async def test_parallel_deploys_race_for_nextid(world: World) -> None:
    """Eight deploys ask /cluster/nextid at the same moment; an outsider grabs an id mid-way."""
    original = world.sim.clone
    grabbed: list[int] = []

    def clone_with_outsider(principal: Any, node: str, vmid: int, params: dict[str, str]) -> Any:
        newid = int(params["newid"])
        if not grabbed:
            # Somebody creates a VM by hand under the id we just checked.
            world.sim.vms[newid] = SimVM(newid, "pve3", {"name": "handmade", "memory": "512"})
            grabbed.append(newid)
        return original(principal, node, vmid, params)

    world.sim.clone = clone_with_outsider  # type: ignore[method-assign]
    outs = await asyncio.gather(*(world.create(f"race-{i}") for i in range(8)))
    await world.run(concurrency=8)
    vmids = []
    for out in outs:
        service = await world.service(out.id)
        assert service.status == "active", service.last_error
        vmids.append((await world.server(service.server_id or 0)).external_id)
    assert len(set(vmids)) == 8
    assert str(grabbed[0]) not in vmids
    assert world.sim.vms[grabbed[0]].config["name"] == "handmade"
    assert len({a.address for a in await world.addresses()}) == len(await world.addresses()) == 8
    assert sorted(r.vmid for r in await world.vmids()) == sorted(int(v or 0) for v in vmids)


async def test_terminate_with_guest_ignoring_acpi(world: World, events: list[ServiceEvent]) -> None:
    service_id, server_id, vm = await deployed(world, "b-t")
    vm.ignore_acpi = True
    answer = await terminate_proxmox_service(world.app, service_id, ACTOR)
    assert answer.outcome == "queued"
    assert answer.service.status == "terminating"
    await world.run()
    service = await world.service(service_id)
    assert service.status == "terminated", service.last_error
    assert vm.vmid not in world.sim.vms
    assert await world.addresses(server_id) == []
    assert await world.vmids() == []
    job = (await world.jobs("proxmox.terminate"))[0]
    lines = [s.detail or "" for s in await world.steps(job.id)]
    assert any("forced stop" in line for line in lines)
    assert [e.kind for e in events if e.kind.startswith("terminat")] == ["terminated"]


async def test_reused_vmid_is_never_destroyed(world: World, events: list[ServiceEvent]) -> None:
    service_id, server_id, vm = await deployed(world, "b-reuse")
    vmid = vm.vmid
    # Somebody destroyed our VM by hand and created their own under the same VMID.
    world.sim.vms[vmid] = SimVM(vmid, "pve2", {"name": "someone-else", "memory": "1024"}, status="running")
    await terminate_proxmox_service(world.app, service_id, ACTOR)
    await world.run()
    service = await world.service(service_id)
    assert service.status == "error_terminate"
    assert "not this service's" in (service.last_error or "")
    assert world.sim.vms[vmid].config["name"] == "someone-else"
    assert world.sim.vms[vmid].status == "running"
    assert len(await world.addresses(server_id)) == 1  # addresses stay allocated
    assert [e.kind for e in events if e.kind == "terminate_failed"] == ["terminate_failed"]
    out = await mark_removed(world.app, service_id, ACTOR)
    assert out.service.status == "terminated"
    assert await world.addresses(server_id) == []
    assert world.sim.vms[vmid].config["name"] == "someone-else"


async def test_failed_destroy_goes_to_error_terminate_then_retry(world: World) -> None:
    service_id, server_id, vm = await deployed(world, "b-err")
    world.sim.fail_next_task("qmdestroy", "unable to remove volume - storage busy")
    await terminate_proxmox_service(world.app, service_id, ACTOR)
    await world.run()
    service = await world.service(service_id)
    assert service.status == "error_terminate"
    assert "storage busy" in (service.last_error or "")
    assert len(await world.jobs("proxmox.terminate")) == 1  # no automatic retry
    assert len(await world.addresses(server_id)) == 1
    await retry_terminate(world.app, service_id, ACTOR)
    await world.run()
    assert (await world.service(service_id)).status == "terminated"
    assert vm.vmid not in world.sim.vms
    assert await world.addresses(server_id) == []


async def test_pool_exhausted_refuses_the_create_and_leaves_nothing(db_url: str, tmp_path: Path) -> None:
    w = await build_world(
        db_url,
        tmp_path,
        pool_specs=[
            {"name": "tiny", "network": "192.0.2.0/29", "range_start": "192.0.2.5", "range_end": "192.0.2.5"}
        ],
    )
    try:
        await w.create("first")
        from vpsbridge.services.errors import Conflict

        with pytest.raises(Conflict, match="no free IPv4"):
            await create_proxmox_service(
                w.app, {"billing_service_id": "second", "client_id": "c", "product": w.product_id}, ACTOR
            )
        assert len(await w.addresses()) == 1
        assert len(await w.jobs("proxmox.deploy")) == 1
    finally:
        await w.app.close()


async def test_failed_clone_is_retried(world: World) -> None:
    world.sim.fail_next_task("qmclone", "disk image corrupt", times=2)
    _service_id, _server_id, vm = await deployed(world, "b-clone")
    assert vm.status == "running"
    deploy = (await world.jobs("proxmox.deploy"))[0]
    retries = [s for s in await world.steps(deploy.id) if s.name == "clone" and s.outcome == "retry"]
    assert len(retries) == 2
    assert "disk image corrupt" in (retries[0].detail or "")
    assert len([v for v in world.sim.vms.values() if not v.template]) == 1
