"""The Proxmox simulator speaks PVE's protocol: envelope, errors, strict parameters, auth, tasks, locks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from vpsbridge.sim.proxmox import ProxmoxState, create_app, standard_cluster
from vpsbridge.sim.proxmox.params import validate

TOKEN = {"Authorization": "PVEAPIToken=vpsbridge@pve!deploy=11111111-2222-3333-4444-555555555555"}


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx2.AsyncClient, ProxmoxState]]:
    sim, _ = standard_cluster(ProxmoxState(time_scale=1.0, durations={"qmclone": 10, "resize": 0}, seed=1))
    transport = httpx2.ASGITransport(app=create_app(sim))
    async with httpx2.AsyncClient(transport=transport, base_url="https://pve/api2/json", headers=TOKEN) as c:
        yield c, sim


def body(response: httpx2.Response) -> Any:
    return response.json()


async def test_envelope_auth_and_unknown_paths(api: tuple[httpx2.AsyncClient, ProxmoxState]) -> None:
    c, sim = api
    r = await c.get("/version")
    assert r.status_code == 200
    assert body(r)["data"]["version"] == "9.1.3"
    r = await c.get("/version", headers={"Authorization": ""})
    assert (r.status_code, body(r)["message"]) == (401, "No ticket")
    r = await c.get("/version", headers={"Authorization": "PVEAPIToken=vpsbridge@pve!deploy=wrong"})
    assert r.status_code == 401
    r = await c.get("/nodes/pve1/lxc")
    assert r.status_code == 501
    assert "not implemented" in body(r)["message"]
    sim.add_token("audit@pve!ro", "read-only-secret", frozenset({"VM.Audit"}))
    r = await c.post(
        "/nodes/pve1/qemu/9000/clone",
        data={"newid": "120"},
        headers={"Authorization": "PVEAPIToken=audit@pve!ro=read-only-secret"},
    )
    assert r.status_code == 403
    assert body(r)["message"] == "Permission check failed (/vms/9000, VM.Clone)"


async def test_strict_parameters(api: tuple[httpx2.AsyncClient, ProxmoxState]) -> None:
    c, _ = api
    r = await c.post("/nodes/pve1/qemu/9000/clone", data={"newid": "120", "fulll": "1", "format": "vdi"})
    assert r.status_code == 400
    errors = body(r)["errors"]
    assert set(errors) == {"fulll", "format"}
    assert "not defined in schema" in errors["fulll"]
    r = await c.post("/nodes/pve1/qemu/9000/clone", data={})
    assert "newid" in body(r)["errors"]
    r = await c.post("/nodes/pve1/qemu/9000/clone", data={"newid": "99"})
    assert "minimum" in body(r)["errors"]["newid"]
    r = await c.put("/nodes/pve1/qemu/9000/config", data={"sshkeys": "ssh-ed25519 AAAA me@host"})
    assert "urlencoded" in body(r)["errors"]["sshkeys"]
    r = await c.put("/nodes/pve1/qemu/9000/config", data={"cores": "two"})
    assert "integer" in body(r)["errors"]["cores"]
    r = await c.put("/nodes/pve1/qemu/9000/resize", data={"disk": "scsi0", "size": "10X"})
    assert "regex" in body(r)["errors"]["size"]
    assert validate("GET /cluster/nextid", {"vmid": "100"}) == {}
    assert (
        validate("PUT /nodes/{node}/qemu/{vmid}/config", {"node": "pve1", "vmid": "100", "net3": "virtio"})
        == {}
    )


async def test_nextid_has_no_reservation(api: tuple[httpx2.AsyncClient, ProxmoxState]) -> None:
    c, _ = api
    first = body(await c.get("/cluster/nextid"))["data"]
    assert first == body(await c.get("/cluster/nextid"))["data"] == "100"
    r = await c.get("/cluster/nextid", params={"vmid": "9000"})
    assert r.status_code == 400
    assert body(r)["errors"]["vmid"] == "VM 9000 already exists"


async def test_clone_lifecycle_on_the_virtual_clock(api: tuple[httpx2.AsyncClient, ProxmoxState]) -> None:
    c, sim = api
    r = await c.post("/nodes/pve1/qemu/9000/clone", data={"newid": "150", "full": "1", "name": "a"})
    upid = body(r)["data"]
    assert upid.startswith("UPID:pve1:")
    assert ":qmclone:9000:vpsbridge@pve!deploy:" in upid
    config = body(await c.get("/nodes/pve1/qemu/150/config"))["data"]
    assert config["lock"] == "clone"
    r = await c.put("/nodes/pve1/qemu/150/config", data={"cores": "2"})
    assert (r.status_code, body(r)["message"]) == (500, "VM is locked (clone)")
    status = body(await c.get(f"/nodes/pve1/tasks/{upid}/status"))["data"]
    assert status["status"] == "running"
    assert (await c.get(f"/nodes/pve2/tasks/{upid}/status")).status_code == 500  # tasks are node-local
    sim.advance(11)
    status = body(await c.get(f"/nodes/pve1/tasks/{upid}/status"))["data"]
    assert (status["status"], status["exitstatus"]) == ("stopped", "OK")
    config = body(await c.get("/nodes/pve1/qemu/150/config"))["data"]
    assert "lock" not in config
    assert config["scsi0"].startswith("local-lvm:vm-150-disk-0,")
    assert config["net0"].split(",")[0] != sim.vms[9000].config["net0"].split(",")[0]
    r = await c.post("/nodes/pve1/qemu/9000/clone", data={"newid": "151", "full": "0", "storage": "ceph"})
    assert "not allowed for linked clones" in body(r)["errors"]["storage"]


async def test_config_digest_pending_and_resize(api: tuple[httpx2.AsyncClient, ProxmoxState]) -> None:
    c, sim = api
    sim.time_scale = 0
    await c.post("/nodes/pve1/qemu/9000/clone", data={"newid": "160", "full": "1"})
    digest = body(await c.get("/nodes/pve1/qemu/160/config"))["data"]["digest"]
    assert (
        await c.put("/nodes/pve1/qemu/160/config", data={"cores": "2", "digest": digest})
    ).status_code == 200
    r = await c.put("/nodes/pve1/qemu/160/config", data={"cores": "3", "digest": digest})
    assert "file changed by other user" in body(r)["message"]
    await c.post("/nodes/pve1/qemu/160/status/start")
    await c.put("/nodes/pve1/qemu/160/config", data={"memory": "4096", "name": "renamed"})
    pending = {p["key"]: p for p in body(await c.get("/nodes/pve1/qemu/160/pending"))["data"]}
    assert pending["memory"]["pending"] == "4096"  # not hot-pluggable by default
    assert pending["name"]["value"] == "renamed"  # applied at once
    current = body(await c.get("/nodes/pve1/qemu/160/config", params={"current": "1"}))["data"]
    assert current["memory"] == "1024"
    upid = body(await c.put("/nodes/pve1/qemu/160/resize", data={"disk": "scsi0", "size": "2G"}))["data"]
    status = body(await c.get(f"/nodes/pve1/tasks/{upid}/status"))["data"]
    assert status["exitstatus"] == "shrinking disks is not supported"
    upid = body(await c.put("/nodes/pve1/qemu/160/resize", data={"disk": "scsi0", "size": "+2G"}))["data"]
    assert body(await c.get(f"/nodes/pve1/tasks/{upid}/status"))["data"]["exitstatus"] == "OK"
    assert "size=5G" in sim.vms[160].config["scsi0"]
    r = await c.delete("/nodes/pve1/qemu/160")
    assert "is running - destroy failed" in body(r)["message"]


async def test_ticket_auth_needs_csrf_for_writes(api: tuple[httpx2.AsyncClient, ProxmoxState]) -> None:
    c, _sim = api
    r = await c.post("/access/ticket", data={"username": "vnc@pve", "password": "console-password"})
    data = body(r)["data"]
    cookie = {"Cookie": f"PVEAuthCookie={data['ticket']}", "Authorization": ""}
    assert (await c.get("/nodes/pve1/qemu/9000/config", headers=cookie)).status_code == 200
    r = await c.post("/nodes/pve1/qemu/9000/termproxy", headers=cookie)
    assert r.status_code == 401
    r = await c.post(
        "/nodes/pve1/qemu/9000/termproxy",
        headers={**cookie, "CSRFPreventionToken": data["CSRFPreventionToken"]},
    )
    assert r.status_code == 200
    r = await c.post("/access/ticket", data={"username": "vnc@pve", "password": "nope"})
    assert r.status_code == 401


async def test_faults_latency_and_offline_nodes(api: tuple[httpx2.AsyncClient, ProxmoxState]) -> None:
    c, sim = api
    sim.add_fault(r"^/nodes$", status=503, times=1)
    assert (await c.get("/nodes")).status_code == 503
    assert (await c.get("/nodes")).status_code == 200
    sim.set_node_online("pve2", False)
    r = await c.get("/nodes/pve2/status")
    assert r.status_code == 595
    nodes = {n["node"]: n["status"] for n in body(await c.get("/nodes"))["data"]}
    assert nodes == {"pve1": "online", "pve2": "offline", "pve3": "online"}
    sim.set_latency(r"^/version$", 0.05)
    import time

    started = time.monotonic()
    await c.get("/version")
    assert time.monotonic() - started >= 0.05


async def test_control_endpoints_and_task_faults(api: tuple[httpx2.AsyncClient, ProxmoxState]) -> None:
    c, sim = api
    sim.time_scale = 0
    ctl = "https://pve/_sim"
    state = body(await c.get(f"{ctl}/state"))
    assert sorted(state["nodes"]) == ["pve1", "pve2", "pve3"]
    assert [v["vmid"] for v in state["vms"]] == [9000, 9001, 9002]
    assert (await c.post(f"{ctl}/faults", json={"path": "^/nodes$", "status": 596})).status_code == 200
    assert (await c.get("/nodes")).status_code == 596
    assert (await c.post(f"{ctl}/nodes/pve3", json={"online": False})).status_code == 200
    assert not sim.nodes["pve3"].online
    assert (
        await c.post(f"{ctl}/tasks", json={"type": "qmclone", "error": "disk image corrupt"})
    ).status_code == 200
    upid = body(await c.post("/nodes/pve1/qemu/9000/clone", data={"newid": "170"}))["data"]
    status = body(await c.get(f"/nodes/pve1/tasks/{upid}/status"))["data"]
    assert status["exitstatus"] == "clone failed: disk image corrupt"
    assert 170 not in sim.vms  # cleaned up like a real failed clone
    await c.post(f"{ctl}/tasks", json={"type": "qmclone", "error": None})
    upid = body(await c.post("/nodes/pve1/qemu/9000/clone", data={"newid": "171"}))["data"]
    sim.advance(3600)
    assert body(await c.get(f"/nodes/pve1/tasks/{upid}/status"))["data"]["status"] == "running"
    assert sim.vms[171].lock == "clone"
    await c.post(f"{ctl}/settings", json={"file_lock_probability": 1})
    r = await c.put("/nodes/pve1/qemu/9001/config", data={"description": "x"})
    assert "got timeout" in body(r)["message"]
    assert (await c.post(f"{ctl}/nope", json={})).status_code == 404
    assert (await c.post(f"{ctl}/faults", json={})).status_code == 400


async def test_storage_lock_contention_and_failed_migration_unlocks(
    api: tuple[httpx2.AsyncClient, ProxmoxState],
) -> None:
    c, sim = api
    sim.time_scale = 0
    sim.storage_lock_probability = 1.0
    upid = body(await c.post("/nodes/pve1/qemu/9000/clone", data={"newid": "180"}))["data"]
    status = body(await c.get(f"/nodes/pve1/tasks/{upid}/status"))["data"]
    assert "pve-storage-local-lvm' - got timeout" in status["exitstatus"]
    sim.storage_lock_probability = 0.0
    await c.post("/nodes/pve1/qemu/9000/clone", data={"newid": "181"})
    sim.fail_next_task("qmigrate", "migration problems")
    upid = body(await c.post("/nodes/pve1/qemu/181/migrate", data={"target": "pve2"}))["data"]
    assert body(await c.get(f"/nodes/pve1/tasks/{upid}/status"))["data"]["exitstatus"] == "migration problems"
    assert sim.vms[181].node == "pve1"
    assert sim.vms[181].lock is None
