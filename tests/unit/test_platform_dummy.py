"""The in-memory dummy driver: real state, delayed tasks, capacity, scopes, locks and faults."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from vpsbridge.http import Missing, Unknown, UpstreamAuthError, UpstreamUnavailable, tri_state
from vpsbridge.platforms import registry
from vpsbridge.platforms.base import (
    InsufficientCapacity,
    InvalidRequest,
    Platform,
    ServerLocked,
    ServerMissing,
    ServerRef,
    ServerSpec,
    TaskHandle,
)
from vpsbridge.platforms.dummy import REQUIRED_SCOPES, DummyCloud

TASK_SECONDS = 0.03


def make(url: str, credentials: dict[str, Any] | None = None, **settings: Any) -> Platform:
    return registry.create_driver(
        "dummy",
        url=url,
        credentials=credentials if credentials is not None else {"token": "t0ken"},
        settings={"task_seconds": TASK_SECONDS, **settings},
    )


@pytest.fixture
async def url() -> AsyncIterator[str]:
    address = f"dummy://{uuid.uuid4().hex}"
    yield address
    DummyCloud.reset(address)


async def wait(driver: Platform, task: TaskHandle) -> TaskHandle:
    for _ in range(200):
        task = await driver.task_status(task)
        if task.finished:
            return task
        await asyncio.sleep(TASK_SECONDS / 3)
    raise AssertionError(f"task {task.id} never finished")


def spec(**overrides: Any) -> ServerSpec:
    values: dict[str, Any] = {
        "hostname": "vps1.example.net",
        "cpu_cores": 2,
        "memory_mb": 2048,
        "disk_gb": 40,
        "os_template": "debian-12",
        "ipv4": 1,
        "ipv6": 1,
    }
    values.update(overrides)
    return ServerSpec(**values)


async def test_connection_reports_each_missing_scope_by_name(url: str) -> None:
    full = await make(url).test_connection()
    assert full.ok
    assert full.version == "dummy 1.0"
    assert full.missing_scopes == []

    partial = await make(url, {"token": "t0ken", "scopes": ["servers:read", "nodes:read"]}).test_connection()
    assert not partial.ok
    assert sorted(partial.missing_scopes) == sorted(set(REQUIRED_SCOPES) - {"servers:read", "nodes:read"})
    failing = next(c for c in partial.checks if c.missing_scope == "servers:write")
    assert "servers:write" in failing.detail

    rejected = await make(url, {"token": "invalid"}).test_connection()
    assert not rejected.ok
    assert [c.name for c in rejected.checks if not c.ok] == ["authentication"]
    assert not (await make(url, {}).test_connection()).ok


async def test_operations_enforce_scopes(url: str) -> None:
    reader = make(url, {"token": "t0ken", "scopes": ["servers:read"]})
    with pytest.raises(UpstreamAuthError, match="servers:write"):
        await reader.create_server(spec())
    with pytest.raises(UpstreamAuthError, match="rejected"):
        await make(url, {"token": "invalid"}).capacity({})


async def test_create_build_lifecycle_and_shared_state(url: str) -> None:
    driver = make(url)
    task = await driver.create_server(spec())
    assert task.state == "running"
    assert task.server is not None
    ref = task.server
    info = await driver.server_info(ref)
    assert info.state == "building"
    assert len(info.ipv4) == 1
    assert len(info.ipv6) == 1
    done = await wait(driver, task)
    assert done.state == "succeeded"
    assert done.progress == 100
    # A second driver for the same URL (as the registry builds per use) sees the same server.
    other = make(url)
    live = await other.server_info(ref, live=True)
    assert live.state == "running"
    assert live.os_template == "debian-12"
    assert live.live
    assert live.stats["uptime_s"] >= 0
    assert live.hostname == "vps1.example.net"


async def test_power_suspend_and_locks(url: str) -> None:
    driver = make(url)
    task = await wait(driver, await driver.create_server(spec()))
    assert task.server is not None
    ref = task.server
    stop = await driver.power(ref, "shutdown")
    with pytest.raises(ServerLocked):
        await driver.power(ref, "start")  # a task is still running on it
    assert isinstance(await tri_state(driver.power(ref, "start")), Unknown)
    await wait(driver, stop)
    assert (await driver.server_info(ref)).state == "stopped"
    await wait(driver, await driver.power(ref, "start"))
    assert (await driver.server_info(ref)).state == "running"

    await wait(driver, await driver.suspend(ref))
    info = await driver.server_info(ref)
    assert info.suspended
    assert info.state == "suspended"
    with pytest.raises(InvalidRequest, match="suspended"):
        await driver.power(ref, "start")
    await wait(driver, await driver.unsuspend(ref))
    info = await driver.server_info(ref)
    assert not info.suspended
    assert info.state == "running"


async def test_capacity_goes_down_on_create_and_back_on_terminate(url: str) -> None:
    driver = make(url, nodes=[{"name": "n1", "cpu_cores": 8, "memory_mb": 8192, "disk_gb": 200}])
    before = (await driver.capacity({})).nodes[0]
    assert (before.memory_mb_free, before.cpu_cores_free, before.servers) == (8192, 8, 0)
    created = await wait(driver, await driver.create_server(spec(memory_mb=4096, cpu_cores=4, disk_gb=100)))
    after = (await driver.capacity({"node": "n1"})).nodes[0]
    assert (after.memory_mb_free, after.cpu_cores_free, after.disk_gb_free, after.servers) == (
        4096,
        4,
        100,
        1,
    )

    await driver.create_server(spec(memory_mb=4096, cpu_cores=4, disk_gb=100, hostname="vps2.example.net"))
    with pytest.raises(InsufficientCapacity, match="no node"):
        await driver.create_server(spec(memory_mb=1024, hostname="vps3.example.net"))

    assert created.server is not None
    end = await driver.terminate(created.server)
    assert (await driver.server_info(created.server)).state == "terminating"
    await wait(driver, end)
    freed = (await driver.capacity({})).nodes[0]
    assert freed.memory_mb_free == 4096
    assert freed.servers == 1
    with pytest.raises(ServerMissing):
        await driver.server_info(created.server)
    assert isinstance(await tri_state(driver.server_info(created.server)), Missing)


async def test_placement_picks_requested_node_or_refuses_unknown(url: str) -> None:
    driver = make(url, nodes=["a", "b"])
    task = await driver.create_server(spec(placement={"node": "b"}))
    assert task.server is not None
    assert task.server.node == "b"
    with pytest.raises(InvalidRequest, match="unknown node"):
        await driver.create_server(spec(placement={"node": "zz"}))
    assert {n.name for n in (await driver.capacity({"nodes": ["a", "b"]})).nodes} == {"a", "b"}


async def test_change_package_build_password_rename(url: str) -> None:
    driver = make(url)
    task = await wait(driver, await driver.create_server(spec()))
    assert task.server is not None
    ref = task.server
    await wait(driver, await driver.change_package(ref, spec(cpu_cores=4, memory_mb=4096, disk_gb=80)))
    info = await driver.server_info(ref)
    assert (info.cpu_cores, info.memory_mb, info.disk_gb) == (4, 4096, 80)
    with pytest.raises(InvalidRequest, match="shrink"):
        await driver.change_package(ref, spec(disk_gb=10))

    rebuilt = await wait(
        driver, await driver.build(ref, "ubuntu-24.04", ssh_keys=["ssh-ed25519 AAAA"], hostname="n.example")
    )
    assert rebuilt.result == {"os_template": "ubuntu-24.04"}
    info = await driver.server_info(ref)
    assert info.os_template == "ubuntu-24.04"
    assert info.hostname == "n.example"
    with pytest.raises(InvalidRequest, match="SSH keys"):
        await driver.build(ref, "windows-2022", ssh_keys=["ssh-ed25519 AAAA"])
    with pytest.raises(InvalidRequest, match="unknown OS template"):
        await driver.build(ref, "templeos")

    reset = await driver.reset_password(ref)
    assert reset.username == "root"
    assert len(reset.password) >= 12
    assert (await driver.reset_password(ref, "Chosen-Passw0rd")).password == "Chosen-Passw0rd"

    await driver.rename(ref, "renamed.example", name="Renamed")
    info = await driver.server_info(ref)
    assert (info.hostname, info.name) == ("renamed.example", "Renamed")


async def test_traffic_console_templates_backups(url: str) -> None:
    driver = make(url)
    task = await wait(driver, await driver.create_server(spec(traffic_gb=1000)))
    assert task.server is not None
    ref = task.server
    cloud = DummyCloud.for_url(url)
    cloud.servers[int(ref.external_id)].rx_bytes = 5_000
    report = await driver.traffic(ref)
    assert report.rx_bytes == 5_000
    assert report.total_bytes == 5_000
    assert report.limit_bytes == 1000 * 1024**3
    assert report.period_start <= report.period_end

    ticket = await driver.console(ref)
    assert ticket.kind == "novnc"
    assert ticket.ticket
    assert ticket.ticket != (await driver.console(ref)).ticket  # one-time tickets

    templates = await driver.os_templates()
    assert "debian-12" in {t.id for t in templates}
    assert [t.id for t in await driver.os_templates({"os_templates": ["rocky-9"]})] == ["rocky-9"]

    assert await driver.backups(ref) == []
    made = await wait(driver, await driver.create_backup(ref, note="before upgrade"))
    (backup,) = await driver.backups(ref)
    assert backup.id == made.result["backup_id"]
    assert backup.note == "before upgrade"
    await wait(driver, await driver.restore_backup(ref, backup.id))
    assert (await driver.server_info(ref)).state == "running"
    with pytest.raises(InvalidRequest):
        await driver.restore_backup(ref, "nope")


async def test_fault_injection_and_missing_objects(url: str) -> None:
    driver = make(url)
    cloud = DummyCloud.for_url(url)
    cloud.inject_fault("capacity", UpstreamUnavailable("dummy: node API timed out"), times=2)
    assert isinstance(await tri_state(driver.capacity({})), Unknown)
    assert isinstance(await tri_state(driver.capacity({})), Unknown)
    assert (await driver.capacity({})).nodes
    assert cloud.calls.count("capacity") == 3
    with pytest.raises(ServerMissing):
        await driver.power(ServerRef(external_id="999"), "start")
    with pytest.raises(ServerMissing):
        await driver.task_status(TaskHandle(id="task-404", kind="x"))
    cloud.inject_fault("test_connection", UpstreamUnavailable("unreachable"))
    with pytest.raises(UpstreamUnavailable):
        await driver.test_connection()


async def test_reset_gives_an_empty_platform(url: str) -> None:
    driver = make(url)
    await driver.create_server(spec())
    DummyCloud.reset(url)
    fresh = make(url)
    assert all(n.servers == 0 for n in (await fresh.capacity({})).nodes)
