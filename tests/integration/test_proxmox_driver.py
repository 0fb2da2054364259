"""The Proxmox driver against the simulator: every operation, locks, offline nodes, ACPI, races, faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from proxmox_support import Env, make_env

from vpsbridge.core.disks import parse_drive, system_disk
from vpsbridge.http import (
    Found,
    Missing,
    Unknown,
    UpstreamAuthError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTimeout,
    tri_state,
)
from vpsbridge.platforms.errors import InvalidRequest, ServerLocked, ServerMissing
from vpsbridge.platforms.models import ServerRef
from vpsbridge.platforms.proxmox import (
    NotOwned,
    TaskFailed,
    TaskTimeout,
    VmidTaken,
    read_marker,
    wait_unlocked,
)


@pytest.fixture
async def pve() -> AsyncIterator[Env]:
    env = make_env(read_timeout=0.3)
    yield env
    await env.driver.aclose()


async def _deploy(env: Env, *, owner: str = "svc-1") -> ServerRef:
    d = env.driver
    vmid = await d.next_vmid()
    assert await d.vmid_free(vmid)
    task = await d.clone(9000, vmid, name=f"vps{vmid}")
    await d.wait(task)
    assert task.server is not None
    await d.write_marker(task.server, owner)
    return task.server


async def test_connection_reports_version_and_privileges(pve: Env) -> None:
    report = await pve.driver.test_connection()
    assert report.ok, report.checks
    assert report.version == "Proxmox VE 9.1.3"
    assert report.missing_scopes == []


async def test_connection_names_missing_privileges() -> None:
    env = make_env(credentials={"token_id": "limited@pve!t", "token_secret": "secret-value-123"})
    env.sim.add_token("limited@pve!t", "secret-value-123", frozenset({"VM.Audit", "Sys.Audit"}))
    report = await env.driver.test_connection()
    assert not report.ok
    assert "VM.Clone" in report.missing_scopes
    assert "Datastore.Audit" in report.missing_scopes
    assert "VM.Audit" not in report.missing_scopes
    clone_check = next(c for c in report.checks if c.name == "privilege VM.Clone")
    assert "clone templates" in clone_check.detail
    bad = make_env(credentials={"token_secret": "wrong-secret-000"})
    report = await bad.driver.test_connection()
    assert not report.ok
    assert report.checks[0].name == "authentication"
    for e in (env, bad):
        await e.driver.aclose()


async def test_full_deploy_sequence(pve: Env) -> None:
    d, sim = pve.driver, pve.sim
    ref = await _deploy(pve)
    vmid = int(ref.external_id)
    vm = sim.vms[vmid]
    template = sim.vms[9000]
    # new volumes on the target storage, new MAC, template flag gone, marker written
    assert f"vm-{vmid}-disk-0" in vm.config["scsi0"]
    assert vm.config["net0"] != template.config["net0"]
    assert "template" not in vm.config
    assert read_marker(vm.config) == "svc-1"
    assert vm.config["smbios1"] != template.config["smbios1"]

    # migrate offline to pve2 with its local storage
    task = await d.migrate(ref, "pve2", targetstorage="local-lvm")
    await d.wait(task)
    assert sim.vms[vmid].node == "pve2"
    moved = ServerRef(external_id=str(vmid), node="pve2")
    assert f"vm-{vmid}-disk-0" in next(iter(sim.nodes["pve2"].storages["local-lvm"].volumes))

    assert await d.set_resources(moved, cores=4, memory_mb=4096) is not None
    assert await d.set_resources(moved, cores=4, memory_mb=4096) is None  # nothing to change

    disk = (await d.system_disk(moved)).key
    assert disk == "scsi0"
    await d.wait(await d.resize_disk(moved, disk, 40))
    assert parse_drive("scsi0", sim.vms[vmid].config["scsi0"]).size == 40 * 1024**3
    with pytest.raises(InvalidRequest, match="never shrunk"):
        await d.resize_disk(moved, disk, 20)
    assert await d.resize_disk(moved, disk, 40) is None

    before = len(pve.requests("POST", "/config"))
    assert await d.set_disk_io(moved, disk) is None  # all four 0 and none set: no call
    assert len(pve.requests("POST", "/config")) == before
    await d.wait(await d.set_disk_io(moved, disk, mbps_rd=100, mbps_wr=50, iops_rd=1000, iops_wr=500))
    drive = parse_drive("scsi0", sim.vms[vmid].config["scsi0"])
    assert drive.io_limits() == {"mbps_rd": 100, "mbps_wr": 50, "iops_rd": 1000, "iops_wr": 500}
    assert drive.options["iothread"] == "1"
    assert drive.size == 40 * 1024**3

    key, task = await d.add_disk(moved, "local-lvm", 20)
    await d.wait(task)
    assert key == "scsi1"
    assert parse_drive(key, sim.vms[vmid].config[key]).size == 20 * 1024**3
    await d.wait(await d.resize_disk(moved, key, 30))

    mac = parse_drive("net0", "x," + sim.vms[vmid].config["net0"]).options["virtio"]
    await d.wait(await d.set_network(moved, bridge="vmbr1", vlan=20, rate_mbps=800))
    net = sim.vms[vmid].config["net0"]
    assert f"virtio={mac}" in net
    assert "bridge=vmbr1" in net
    assert "tag=20" in net
    assert "rate=100" in net

    await d.set_firewall_options(moved, enable=True, ipfilter=True, policy_in="ACCEPT", policy_out="ACCEPT")
    assert sim.vms[vmid].firewall["ipfilter"] == "1"
    await d.sync_ipset(moved, "ipfilter-net0", ["192.0.2.10", "2001:db8::10"])
    await d.sync_ipset(moved, "ipfilter-net0", ["192.0.2.10", "192.0.2.11"])
    assert await d.ipset(moved, "ipfilter-net0") == ["192.0.2.10", "192.0.2.11"]

    keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx+/= user@host", "ssh-rsa AAAAB3Nza== other@host"]
    await d.wait(
        await d.set_cloudinit(
            moved,
            user="debian",
            password="S3cret-pass",
            ssh_keys=keys,
            ipconfig={0: "ip=192.0.2.10/24,gw=192.0.2.1", 1: "ip6=2001:db8::10/64,gw6=2001:db8::1"},
            nameservers=["192.0.2.53", "2001:db8::53"],
        )
    )
    assert await d.ssh_keys(moved) == keys
    assert sim.vms[vmid].config["nameserver"] == "192.0.2.53 2001:db8::53"

    await d.wait(await d.power(moved, "start"))
    info = await d.server_info(moved, live=True)
    assert info.state == "running"
    assert info.ipv4 == ("192.0.2.10",)
    assert info.ipv6 == ("2001:db8::10",)
    assert info.cpu_cores == 4
    assert info.memory_mb == 4096
    assert info.disk_gb == 40

    traffic = await d.traffic(moved)
    assert traffic.rx_bytes > 0
    assert traffic.tx_bytes > 0
    ticket = await d.console(moved)
    assert ticket.port
    assert ticket.ticket
    assert "vncwebsocket" in (ticket.url or "")
    assert any(r[0] == "POST" and r[1].endswith("/vncproxy") for r in sim.requests)

    with pytest.raises(UpstreamRejected, match="running"):
        await d.destroy(moved, owner="svc-1")
    await d.wait(await d.stop(moved))
    with pytest.raises(NotOwned):
        await d.destroy(moved, owner="svc-2")
    used = sim.nodes["pve2"].storages["local-lvm"].used
    await d.wait(await d.destroy(moved, owner="svc-1"))
    assert vmid not in sim.vms
    assert sim.nodes["pve2"].storages["local-lvm"].used < used
    assert isinstance(await tri_state(d.server_info(moved)), Missing)


async def test_clone_appears_locked_and_consumes_capacity() -> None:
    env = make_env(time_scale=1.0, durations={"qmclone": 0.3})
    d, sim = env.driver, env.sim
    free = sim.nodes["pve1"].storages["local-lvm"].avail
    task = await d.clone(9001, 500, name="vps500")
    assert task.server == ServerRef(external_id="500", node="pve1")
    config = await d.vm_config(task.server)
    assert config["lock"] == "clone"
    assert sim.nodes["pve1"].storages["local-lvm"].avail < free
    assert (await d.task_status(task)).state == "running"
    with pytest.raises(ServerLocked):
        await d.update_config(task.server, {"cores": 2})
    await d.wait(task)
    assert (await d.task_status(task)).state == "succeeded"
    assert "lock" not in await d.vm_config(task.server)
    await d.aclose()


async def test_clone_target_refused_for_local_storage(pve: Env) -> None:
    with pytest.raises(UpstreamRejected, match="uses local storage"):
        await pve.driver.clone(9000, 600, target="pve3")
    assert 600 not in pve.sim.vms
    # with the template on shared storage, target works
    pve.sim.add_template(9100, "pve1", "shared-tpl", storage="ceph")
    task = await pve.driver.clone(9100, 601, target="pve3", storage="ceph")
    await pve.driver.wait(task)
    assert pve.sim.vms[601].node == "pve3"


async def test_clone_fails_when_storage_is_full(pve: Env) -> None:
    pve.sim.nodes["pve1"].storages["local-lvm"].base_used = pve.sim.nodes["pve1"].storages["local-lvm"].total
    task = await pve.driver.clone(9002, 700)
    with pytest.raises(TaskFailed, match="not enough free space") as info:
        await pve.driver.wait(task)
    assert 700 not in pve.sim.vms  # cleaned up
    assert any("TASK ERROR" in line for line in info.value.log_tail)


async def test_nextid_race_surfaces_vmid_taken() -> None:
    env = make_env(time_scale=1.0, durations={"qmclone": 0.2})
    d = env.driver
    first, second = await asyncio.gather(d.next_vmid(), d.next_vmid())
    assert first == second  # no reservation in /cluster/nextid
    results = await asyncio.gather(d.clone(9000, first), d.clone(9000, second), return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1
    assert isinstance(errors[0], VmidTaken)
    assert "already exists" in str(errors[0])
    assert not await d.vmid_free(first)
    await d.aclose()


async def test_lock_timeout_is_unknown_not_missing(pve: Env) -> None:
    ref = await _deploy(pve)
    pve.sim.hold_file_lock(int(ref.external_id))
    outcome = await tri_state(pve.driver.update_config(ref, {"cores": 2}))
    assert isinstance(outcome, Unknown)
    assert isinstance(outcome.error, ServerLocked)
    assert "got timeout" in outcome.reason
    pve.sim.release_file_lock(int(ref.external_id))
    assert await pve.driver.update_config(ref, {"cores": 2}) is not None


async def test_node_offline_mid_migrate_keeps_vm_on_source() -> None:
    env = make_env(time_scale=1.0, durations={"qmclone": 0, "qmigrate": 0.3})
    d, sim = env.driver, env.sim
    ref = await _deploy(env)
    task = await d.migrate(ref, "pve3", targetstorage="local-lvm")
    assert sim.vms[int(ref.external_id)].lock == "migrate"
    sim.set_node_online("pve3", False)
    with pytest.raises(TaskFailed, match="not online"):
        await d.wait(task)
    vm = sim.vms[int(ref.external_id)]
    assert vm.node == "pve1"
    assert vm.lock is None
    # migrating to an offline node is refused up front
    with pytest.raises(UpstreamRejected, match="not online"):
        await d.migrate(ref, "pve3")
    # asking the offline node itself is an unknown, never "missing"
    outcome = await tri_state(d.vm_config(ServerRef(external_id=ref.external_id, node="pve3")))
    assert isinstance(outcome, Unknown)
    await d.aclose()


async def test_guest_ignoring_acpi_shutdown() -> None:
    env = make_env(time_scale=1.0, durations={"qmclone": 0, "qmstart": 0, "qmstop": 0})
    d, sim = env.driver, env.sim
    ref = await _deploy(env)
    await d.wait(await d.power(ref, "start"))
    sim.vms[int(ref.external_id)].ignore_acpi = True
    with pytest.raises(TaskFailed, match="got timeout"):
        await d.wait(await d.shutdown(ref, timeout=0))
    assert sim.vms[int(ref.external_id)].status == "running"
    await d.wait(await d.shutdown(ref, timeout=0, force_stop=True))
    assert sim.vms[int(ref.external_id)].status == "stopped"
    await d.aclose()


async def test_vm_followed_after_moving_and_missing_only_when_gone(pve: Env) -> None:
    ref = await _deploy(pve)
    await pve.driver.wait(await pve.driver.migrate(ref, "pve2"))
    stale = ServerRef(external_id=ref.external_id, node="pve1")
    info = await pve.driver.server_info(stale)
    assert info.ref.node == "pve2"
    outcome = await tri_state(pve.driver.server_info(ServerRef(external_id="4242", node="pve1")))
    assert isinstance(outcome, Missing)
    with pytest.raises(ServerMissing):
        await pve.driver.vm_config(ServerRef(external_id="4242"))


async def test_faults_map_to_tri_state(pve: Env) -> None:
    ref = await _deploy(pve)
    d, sim = pve.driver, pve.sim
    sim.add_fault(r"/config$", method="GET", status=500, message="got an unexpected error", times=10)
    outcome = await tri_state(d.vm_config(ref))
    assert isinstance(outcome, Unknown)
    assert "unexpected error" in outcome.reason
    sim.faults.clear()
    # 596 is retried for idempotent calls and then succeeds
    sim.add_fault(r"/config$", method="GET", status=596, times=1)
    assert isinstance(await tri_state(d.vm_config(ref)), Found)
    # persistent 595/596 stays unknown
    sim.add_fault(r"/status/current$", status=595, times=10)
    outcome = await tri_state(d.vm_status(ref))
    assert isinstance(outcome, Unknown)
    sim.faults.clear()
    # a timeout is unknown too
    sim.add_fault(r"/status/current$", kind="timeout", times=10)
    outcome = await tri_state(d.vm_status(ref))
    assert isinstance(outcome, Unknown)
    assert isinstance(outcome.error, UpstreamTimeout)
    sim.faults.clear()
    # a connection reset on a GET is retried
    sim.add_fault(r"/status/current$", kind="reset", times=1)
    assert isinstance(await tri_state(d.vm_status(ref)), Found)
    # a POST that creates something is never repeated behind the caller's back
    fault = sim.add_fault(r"/clone$", status=596, times=1)
    outcome = await tri_state(d.clone(9000, 800))
    assert isinstance(outcome, Unknown)
    assert fault.times == 0
    assert 800 not in sim.vms  # a repeated attempt would have passed and created it


async def test_resize_is_synchronous_before_8() -> None:
    env = make_env(version="7.4.17")
    ref = await _deploy(env)
    assert await env.driver.resize_disk(ref, "scsi0", 12) is None
    assert parse_drive("scsi0", env.sim.vms[int(ref.external_id)].config["scsi0"]).size == 12 * 1024**3
    await env.driver.aclose()


async def test_reset_password_reboots_running_vm_and_applies_pending(pve: Env) -> None:
    ref = await _deploy(pve)
    d, sim = pve.driver, pve.sim
    await d.wait(await d.power(ref, "start"))
    vm = sim.vms[int(ref.external_id)]
    await d.wait(await d.set_resources(ref, cores=2))
    assert vm.pending.get("cores") == "2"  # cpu hotplug is off: pending until reboot
    reset = await d.reset_password(ref)
    assert reset.username == "root"
    assert len(reset.password) >= 16
    assert reset.task is not None
    await d.wait(reset.task)
    assert vm.config["cipassword"] == reset.password
    assert vm.config["cores"] == "2"
    assert not vm.pending


async def test_capacity_with_overcommit_and_offline_node(pve: Env) -> None:
    await _deploy(pve)
    report = await pve.driver.capacity({"storage": "local-lvm", "cpu_overcommit": 2, "ram_overcommit": 1})
    nodes = {n.name: n for n in report.nodes}
    assert set(nodes) == {"pve1", "pve2", "pve3"}
    assert nodes["pve1"].cpu_cores == 32
    assert nodes["pve1"].cpu_cores_free == 31
    assert nodes["pve1"].memory_mb == 64 * 1024
    assert nodes["pve1"].memory_mb_free == 63 * 1024
    assert nodes["pve2"].disk_gb == 2000
    assert nodes["pve1"].disk_gb_free < nodes["pve1"].disk_gb
    pve.sim.set_node_online("pve3", False)
    report = await pve.driver.capacity({"nodes": ["pve2", "pve3"]})
    assert [(n.name, n.enabled) for n in report.nodes] == [("pve2", True), ("pve3", False)]


async def test_os_templates_and_console_ticket_user(pve: Env) -> None:
    templates = await pve.driver.os_templates()
    assert [t.name for t in templates] == ["debian-12", "ubuntu-2404", "almalinux-9"]
    assert [t.id for t in await pve.driver.os_templates({"os_templates": ["9001"]})] == ["9001"]
    ref = await _deploy(pve)
    with pytest.raises(UpstreamRejected, match="not running"):
        await pve.driver.console(ref)
    ticket = await pve.driver.console(ref, kind="xterm")
    assert ticket.kind == "xterm"
    proxies = [t for t in pve.sim.tasks.values() if t.type == "termproxy"]
    assert proxies
    assert proxies[-1].user == "vnc@pve"


async def test_remove_disk_purges_volume(pve: Env) -> None:
    ref = await _deploy(pve)
    key, task = await pve.driver.add_disk(ref, "ceph", 5)
    await pve.driver.wait(task)
    ceph = pve.sim.shared_storages["ceph"]
    assert len(ceph.volumes) == 1
    await pve.driver.wait(await pve.driver.remove_disk(ref, key))
    config = await pve.driver.vm_config(ref)
    assert key not in config
    assert not any(k.startswith("unused") for k in config)
    assert ceph.volumes == {}


async def test_rebuild_settings_survive(pve: Env) -> None:
    ref = await _deploy(pve)
    d = pve.driver
    await d.wait(await d.set_cloudinit(ref, ipconfig={0: "ip=192.0.2.20/24,gw=192.0.2.1"}))
    await d.wait(await d.resize_disk(ref, "scsi0", 15))
    preserved = d.preserved_settings(await d.vm_config(ref))
    await d.wait(await d.destroy(ref, owner="svc-1"))
    task = await d.clone(9001, int(ref.external_id))
    await d.wait(task)
    await d.wait(await d.restore_settings(ref, preserved))
    await d.wait(await d.resize_disk(ref, "scsi0", preserved["_system_disk_gb"]))
    config = await d.vm_config(ref)
    assert config["ipconfig0"] == "ip=192.0.2.20/24,gw=192.0.2.1"
    assert config["net0"] == preserved["net0"]
    assert read_marker(config) == "svc-1"
    assert system_disk(config) == "scsi0"
    assert parse_drive("scsi0", config["scsi0"]).size == 15 * 1024**3


async def test_reassign_disk_moves_the_volume_to_another_vm_on_the_same_node(pve: Env) -> None:
    ref = await _deploy(pve)
    d = pve.driver
    key, task = await d.add_disk(ref, "local-lvm", 5)
    await d.wait(task)
    volid = parse_drive(key, (await d.vm_config(ref))[key]).file
    other = await d.next_vmid()
    await d.wait(await d.clone(9000, other))
    other_ref = ServerRef(external_id=str(other), node="pve1")
    if ref.node != "pve1":
        with pytest.raises((ServerMissing, UpstreamNotFound), match="does not exist"):
            await d.reassign_disk(ref, key, other, "scsi1")  # the target is on another node
        await d.wait(await d.migrate(other_ref, str(ref.node), targetstorage="local-lvm"))
        other_ref = ServerRef(external_id=str(other), node=ref.node)
    with pytest.raises(UpstreamRejected, match="already in use"):
        await d.reassign_disk(ref, key, other, "scsi0")
    await d.wait(await d.reassign_disk(ref, key, other, "scsi1"))
    moved = parse_drive("scsi1", (await d.vm_config(other_ref))["scsi1"])
    assert key not in await d.vm_config(ref)
    assert moved.file != volid
    assert f"vm-{other}-disk-" in moved.file
    assert moved.size == 5 * 1024**3
    node = pve.sim.nodes[str(ref.node)]
    assert volid.split(":", 1)[1] not in node.storages["local-lvm"].volumes
    assert moved.file.split(":", 1)[1] in node.storages["local-lvm"].volumes


async def test_stalled_clone_times_out_as_unknown_and_stays_locked(pve: Env) -> None:
    pve.sim.fail_next_task("qmclone", None)
    task = await pve.driver.clone(9000, 900)
    outcome = await tri_state(pve.driver.wait(task, timeout=0.1))
    assert isinstance(outcome, Unknown)
    assert isinstance(outcome.error, TaskTimeout)
    assert task.server is not None
    with pytest.raises(ServerLocked, match=r"still locked \(clone\)"):
        await wait_unlocked(pve.driver, task.server, timeout=0.05, interval=0.01)
    config = await pve.driver.vm_config(task.server)
    assert config["lock"] == "clone"
    pve.sim.fail_next_task("qmclone", "disk image corrupt")
    with pytest.raises(TaskFailed, match="disk image corrupt"):
        await pve.driver.wait(await pve.driver.clone(9000, 901))
    ref = await _deploy(pve)
    assert (await wait_unlocked(pve.driver, ref))["name"].startswith("vps")
    assert (await pve.driver.vm_config(ref)).get("cipassword") is None
    await pve.driver.wait(await pve.driver.set_cloudinit(ref, password="Secret-123"))
    assert (await pve.driver.vm_config(ref))["cipassword"] == "**********"


async def test_credentials_forms() -> None:
    env = make_env()
    combined = make_env(
        credentials={
            "token_id": None,
            "token_secret": None,
            "api_token": f"{env.info.token_id}={env.info.token_secret}",
        }
    )
    assert (await combined.driver.test_connection()).ok
    empty = make_env(credentials={"token_id": None, "token_secret": None})
    report = await empty.driver.test_connection()
    assert not report.ok
    assert "no API token" in report.checks[0].detail
    with pytest.raises(UpstreamAuthError):
        await empty.driver.os_templates()
    for e in (env, combined, empty):
        await e.driver.aclose()
