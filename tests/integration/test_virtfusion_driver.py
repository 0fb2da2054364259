"""The VirtFusion driver against the simulator, in-process: every operation, errors, locks, faults.

The simulator runs with 50 ms tasks so builds, power actions and the late IPv6 subnet happen in real
(short) time; the driver goes through the real HTTP layer (retries, error mapping, redaction).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from virtfusion_support import PANEL, make_driver, make_sim, spec, wait_for

from vpsbridge.http import Found, Missing, Unknown, tri_state
from vpsbridge.http.errors import (
    UpstreamAuthError,
    UpstreamMalformed,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from vpsbridge.platforms.errors import InvalidRequest, ServerLocked, ServerMissing
from vpsbridge.platforms.models import ServerRef, TaskHandle
from vpsbridge.platforms.registry import create_driver
from vpsbridge.platforms.virtfusion import (
    ScopeMissing,
    SsoRedirectRefused,
    UserRelationConflict,
    VirtFusionPlatform,
)
from vpsbridge.sim.virtfusion import Fault, VirtFusionState

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGl5b3Vyb3duZXhhbXBsZWtleQ ada@laptop"


async def finish(driver: VirtFusionPlatform, handle: TaskHandle) -> TaskHandle:
    async def done() -> TaskHandle | None:
        nonlocal handle
        handle = await driver.task_status(handle)
        return handle if handle.finished else None

    return await wait_for(done)


async def built_server(driver: VirtFusionPlatform, **overrides: Any) -> TaskHandle:
    handle = await driver.create_server(spec(**{"os_template": "1", **overrides}))
    return await finish(driver, handle)


@pytest.fixture
def sim() -> tuple[VirtFusionState, Any]:
    return make_sim()


@pytest.fixture
async def driver(sim: tuple[VirtFusionState, Any]) -> Any:
    d, _ = make_driver(sim[1])
    yield d
    await d.aclose()


def _self_signed_pem() -> bytes:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "panel.example.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


async def test_registry_builds_the_driver_with_its_ca_bundle(tmp_path: Any) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(_self_signed_pem())
    d = create_driver("virtfusion", url=PANEL, credentials={"token": "t"}, ca_bundle=str(bundle))
    assert isinstance(d, VirtFusionPlatform)
    assert d.verify == str(bundle)
    assert d.client.base_url == PANEL + "/api/v1"
    await d.aclose()
    # the catalog stores an uploaded certificate as PEM text: that works too
    pem = create_driver("virtfusion", url=PANEL, credentials={"token": "t"}, ca_bundle=bundle.read_text())
    await pem.aclose()
    with pytest.raises(ssl.SSLError):
        create_driver(
            "virtfusion", url=PANEL, credentials={"token": "t"}, ca_bundle="-----BEGIN CERTIFICATE-----x"
        )
    # the bundle is really loaded: a missing file fails at once instead of silently trusting nothing
    with pytest.raises(FileNotFoundError):
        create_driver(
            "virtfusion", url=PANEL, credentials={"token": "t"}, ca_bundle=str(tmp_path / "none.pem")
        )


async def test_connection_report_names_a_missing_compute_permission(sim: tuple[VirtFusionState, Any]) -> None:
    state, app = sim
    state.tokens["limited"] = {"servers:read", "packages:read", "media:read", "users:read"}
    good, _ = make_driver(app)
    assert (await good.test_connection()).ok
    limited, _ = make_driver(app, token="limited")
    report = await limited.test_connection()
    assert not report.ok
    assert report.missing_scopes == ["compute:read"]
    bad, _ = make_driver(app, token="wrong")
    report = await bad.test_connection()
    assert not report.ok
    assert report.checks[0].name == "authentication"
    for d in (good, limited, bad):
        await d.aclose()


async def test_create_build_poll_and_late_ipv6(
    driver: VirtFusionPlatform, sim: tuple[VirtFusionState, Any]
) -> None:
    state, _ = sim
    handle = await driver.create_server(
        spec(
            os_template="3",
            ssh_keys=(KEY,),
            extra={
                "package_id": 2,
                "swap": 512,
                "user": {"name": "Ada", "email": "ada@example.net"},
                "options": {"Memory": "3|3 GB", "CPU Cores": "2|2 cores", "IPv4": "2"},
            },
        )
    )
    assert handle.kind == "build"
    assert handle.state == "running"
    password = handle.result["root_password"]
    assert password
    assert password in driver.client.secrets
    server = state.servers[int(handle.server.external_id)]  # type: ignore[union-attr]
    assert (server.hostname, server.name) == ("web1.example.net", "Web 1")
    assert server.memory == 3072
    assert server.cpu_cores == 2
    assert len(server.ipv4) == 2
    assert server.ssh_key_ids
    assert state.ssh_keys[server.ssh_key_ids[0]].public_key == KEY
    with pytest.raises(ServerLocked):  # the build holds the server
        await driver.power(handle.server, "restart")  # type: ignore[arg-type]
    done = await finish(driver, handle)
    assert done.state == "succeeded"
    assert done.result["ipv4"] == server.ipv4
    assert done.result["ipv6"] == []  # IPv6 shows up a little after the build

    async def ipv6() -> Any:
        return (await driver.server_info(done.server)).ipv6  # type: ignore[arg-type]

    assert (await wait_for(ipv6))[0].endswith("/80")
    info = await driver.server_info(done.server, live=True)  # type: ignore[arg-type]
    assert info.state == "running"
    assert info.live
    assert info.memory_mb == 3072
    assert 0 < info.stats["memory_used_mb"] < 3072
    assert info.stats["disk_used_gb"] > 0


async def test_windows_guests_report_memory_through_the_agent(driver: VirtFusionPlatform) -> None:
    done = await built_server(
        driver, os_template="6", extra={"package_id": 3, "user": {"email": "w@example.net"}}
    )
    info = await driver.server_info(done.server, live=True)  # type: ignore[arg-type]
    assert info.raw["remoteState"]["memory"]["_source"] == "agent_meminfo"
    assert info.stats["memory_total_mb"] == 4096.0
    assert info.stats["memory_used_mb"] > 0


async def test_users_are_found_by_relation_id_and_conflicts_are_explained(
    driver: VirtFusionPlatform, sim: tuple[VirtFusionState, Any]
) -> None:
    state, _ = sim
    first = await driver.ensure_user(7, name="Bob", email="bob@example.net")
    again = await driver.ensure_user(7, name="Bob", email="bob@example.net")
    assert first["id"] == again["id"]
    assert len(state.users) == 1
    state.create_user("Carol", "carol@example.net", None)  # made in the panel by hand, never linked
    with pytest.raises(UserRelationConflict, match="External Relation ID to 8"):
        await driver.ensure_user(8, name="Carol", email="carol@example.net")
    assert len(state.users) == 2


async def test_dry_run_validates_without_creating(
    driver: VirtFusionPlatform, sim: tuple[VirtFusionState, Any]
) -> None:
    state, _ = sim
    assert await driver.validate(spec()) == []
    bad = spec(extra={"package_id": 5, "user": {"email": "ada@example.net"}})  # package 5 is disabled
    assert "Invalid or disabled package" in (await driver.validate(bad))[0]
    too_big = spec(
        extra={"package_id": 1, "user": {"email": "ada@example.net"}, "options": {"Memory": "999999"}}
    )
    assert "enough free resources" in (await driver.validate(too_big))[0]
    assert state.servers == {}


async def test_capacity_is_consumed_by_creation_and_freed_by_termination(driver: VirtFusionPlatform) -> None:
    before = await driver.capacity({"hypervisor_group_id": 2})
    assert len(before.nodes) == 3
    free = sum(n.memory_mb_free for n in before.nodes)
    handle = await driver.create_server(spec(placement={"hypervisor_group_id": 2}))
    assert handle.kind == "create"
    assert handle.state == "succeeded"
    during = await driver.capacity({"hypervisor_group_id": 2})
    assert sum(n.memory_mb_free for n in during.nodes) == free - 1024
    resources = await driver.group_resources(2)
    assert sum(r["resources"]["servers"]["allocated"] for r in resources) == 1
    await driver.terminate(handle.server)  # type: ignore[arg-type]
    after = await driver.capacity({"hypervisor_group_id": 2})
    assert sum(n.memory_mb_free for n in after.nodes) == free


async def test_group_resources_follow_every_page(sim: tuple[VirtFusionState, Any]) -> None:
    state, app = sim
    group = state.groups[1]
    for n in range(250):
        state.add_hypervisor(group, f"extra-{n}", ipv4_count=1)
    d, transport = make_driver(app)
    resources = await d.group_resources(1)
    assert len(resources) == 253
    pages = [str(r.url) for r, _, _ in transport.exchanges if "/resources" in r.url.path]
    assert len(pages) == 2
    assert "page=2" in pages[1]
    await d.aclose()


async def test_lifecycle_power_suspend_package_password_rename(
    driver: VirtFusionPlatform, sim: tuple[VirtFusionState, Any]
) -> None:
    state, _ = sim
    done = await built_server(driver)
    ref = done.server
    assert ref is not None
    server = state.servers[int(ref.external_id)]
    stop = await finish(driver, await driver.power(ref, "stop"))
    assert stop.state == "succeeded"
    assert server.power == "stopped"
    assert (await driver.server_info(ref, live=True)).state == "stopped"
    await finish(driver, await driver.power(ref, "start"))
    assert server.power == "running"

    assert (await driver.suspend(ref)).state == "succeeded"
    assert server.suspended
    assert (await driver.server_info(ref)).state == "suspended"
    with pytest.raises(InvalidRequest, match="suspended"):
        await driver.power(ref, "restart")
    await driver.unsuspend(ref)
    assert not server.suspended

    change = await driver.change_package(
        ref, spec(extra={"package_id": 2, "options": {"Memory": "3", "Bandwidth": "0"}})
    )
    assert (
        any("CPU" in w or "disk" in w for w in change.result["warnings"]) or change.result["warnings"] == []
    )
    assert server.package_id == 2
    assert server.memory == 3072
    assert server.traffic == 0
    assert change.result["modified"] == {"memory": 3072, "traffic": 0}
    await driver.modify(ref, cpu_cores=3)
    assert server.cpu_cores == 3
    shrink = await driver.change_package(ref, spec(extra={"package_id": 1}))
    assert "primary disk not updated" in " ".join(shrink.result["warnings"])
    assert server.storage == 50

    reset = await driver.reset_password(ref)
    assert reset.username == "root"
    assert reset.task is not None
    await finish(driver, reset.task)
    assert server.password == reset.password
    with pytest.raises(InvalidRequest):
        await driver.reset_password(ref, "chosen-by-me")

    await driver.rename(ref, "web1.example.net", name="Shop front")
    assert server.name == "Shop front"
    assert server.hostname == "web1.example.net"


async def test_not_found_counts_as_done_for_suspend_and_terminate(driver: VirtFusionPlatform) -> None:
    ghost = ServerRef(external_id="999")
    for call in (driver.suspend, driver.unsuspend, driver.terminate):
        handle = await call(ghost)
        assert handle.state == "succeeded"
        assert handle.result["server_missing"] is True
    with pytest.raises(ServerMissing):
        await driver.server_info(ghost)
    assert isinstance(await tri_state(driver.server_info(ghost)), Missing)


async def test_terminate_with_a_delay_keeps_the_server_until_it_expires(
    sim: tuple[VirtFusionState, Any],
) -> None:
    state, app = sim
    state.time_scale = 0.001  # one "minute" = 60 ms
    d, _ = make_driver(app, settings={"terminate_delay_minutes": 1})
    created = await d.create_server(spec())
    handle = await d.terminate(created.server)  # type: ignore[arg-type]
    assert handle.result == {"delay_minutes": 1}
    assert isinstance(await tri_state(d.server_info(created.server)), Found)  # type: ignore[arg-type]

    async def gone() -> bool:
        return isinstance(await tri_state(d.server_info(created.server)), Missing)  # type: ignore[arg-type]

    assert await wait_for(gone)
    await d.aclose()


async def test_console_rotates_its_token_and_sso_stays_on_the_panel(driver: VirtFusionPlatform) -> None:
    done = await built_server(driver)
    ref = done.server
    assert ref is not None
    first, second = await driver.console(ref), await driver.console(ref)
    assert first.ticket != second.ticket
    assert first.url
    assert first.url.startswith(PANEL + "/vnc/?token=")
    url = await driver.sso_url(42, ref)
    assert url.startswith(PANEL + "/token_authenticate/?1=")
    email, password = await driver.reset_panel_login(42)
    assert email == "ada@example.net"
    assert password


async def test_sso_redirect_to_another_host_is_refused(driver: VirtFusionPlatform, monkeypatch: Any) -> None:
    done = await built_server(driver)
    real = driver.client.server_login_tokens

    async def hijacked(ext: int, sid: int) -> dict[str, Any]:
        data = await real(ext, sid)
        auth = data["authentication"]
        auth["endpoint_complete"] = "https://evil.example.org" + auth["endpoint_complete"]
        return data

    monkeypatch.setattr(driver.client, "server_login_tokens", hijacked)
    with pytest.raises(SsoRedirectRefused, match=r"evil\.example\.org"):
        await driver.sso_url(42, done.server)  # type: ignore[arg-type]


async def test_traffic_blocks_ipv4_templates_backups(
    driver: VirtFusionPlatform, sim: tuple[VirtFusionState, Any]
) -> None:
    state, _ = sim
    done = await built_server(driver, extra={"package_id": 4, "user": {"email": "ada@example.net"}})
    ref = done.server
    assert ref is not None
    report = await driver.traffic(ref)
    assert report.limit_bytes is None  # package 4: limit 0 = unmetered
    await driver.add_traffic_block(ref, 100)
    blocks = await driver.traffic_blocks(ref)
    assert [b["traffic"] for b in blocks["assigned"]] == [100]
    assert (await driver.traffic(ref)).limit_bytes == 100 * 1024**3
    await driver.remove_traffic_block(ref, blocks["assigned"][0]["id"])
    assert (await driver.traffic_blocks(ref))["assigned"] == []

    added = await driver.add_ipv4(ref, 2)
    assert len(added) == 2
    assert state.servers[int(ref.external_id)].ipv4[-2:] == added
    removed = await driver.remove_ipv4_quantity(ref, 2)
    assert removed == added
    assert len(state.servers[int(ref.external_id)].ipv4) == 1
    with pytest.raises(InvalidRequest, match="first must stay"):
        await driver.remove_ipv4_quantity(ref, 1)

    names = {t.name for t in await driver.os_templates({"package_id": 1})}
    assert "Windows Server 2022 Standard" not in names
    assert "AlmaLinux 9 Minimal" in names
    assert any("windows" in t.features for t in await driver.os_templates({"package_id": 3}))
    state.servers[int(ref.external_id)].backups.append(
        {
            "id": 5,
            "serverId": int(ref.external_id),
            "storage": {"id": 1, "name": "Backup 1", "enabled": True},
            "deleting": False,
            "restoring": False,
            "progress": False,
            "complete": True,
            "deleteAfter": None,
            "created": "2025-03-03T20:25:01+00:00",
            "updated": "2025-03-03T20:26:01+00:00",
        }
    )
    backups = await driver.backups(ref)
    assert [(b.id, b.note) for b in backups] == [("5", "Backup 1")]


async def test_self_service_credit_usage_and_report(driver: VirtFusionPlatform) -> None:
    await driver.ensure_user(42, name="Ada", email="ada@example.net", self_service=1)
    assert await driver.credit_balance(42) == 0
    credit_id = await driver.add_credit(42, 12.5, reference=9001, note="Invoice #9001")
    assert credit_id >= 1
    assert await driver.credit_balance(42) == 12.5
    with pytest.raises(InvalidRequest):
        await driver.add_credit(42, 0)
    usage = await driver.self_service_usage(42, range_="m")
    assert usage["user"]["relationalId"] == 42
    report = await driver.self_service_report(42, period=0)
    assert "usage" in report
    assert "currency" in report


async def test_errors_are_typed(sim: tuple[VirtFusionState, Any]) -> None:
    state, app = sim
    state.tokens["no-compute"] = {"servers:read", "servers:write", "users:read", "users:write"}
    d, _ = make_driver(app, token="no-compute")
    with pytest.raises(ScopeMissing) as missing:
        await d.capacity({"hypervisor_group_id": 1})
    assert missing.value.scope == "compute:read"
    assert "compute:read" in str(missing.value)
    bad, _ = make_driver(app, token="wrong")
    with pytest.raises(UpstreamAuthError) as auth:
        await bad.client.connect()
    assert auth.value.status == 401
    assert "401 Unauthorized" in str(auth.value)
    good, _ = make_driver(app)
    with pytest.raises(InvalidRequest, match="Invalid or disabled firewall ruleset"):
        await good.create_server(
            spec(
                extra={
                    "package_id": 1,
                    "user": {"email": "a@example.net"},
                    "options": {"Firewall Rulesets": "1,9"},
                }
            )
        )
    for d_ in (d, bad, good):
        await d_.aclose()


async def test_faults_are_unknown_never_missing(sim: tuple[VirtFusionState, Any]) -> None:
    state, app = sim
    d, _ = make_driver(app, read_timeout=0.2)
    created = await d.create_server(spec())
    ref = created.server
    assert ref is not None
    path = f"/servers/{ref.external_id}"
    cases: list[tuple[Fault, type[Exception]]] = [
        (Fault(kind="status", path=path, status=500, times=5), UpstreamUnavailable),
        (Fault(kind="status", path=path, status=503, times=5), UpstreamUnavailable),
        (Fault(kind="timeout", path=path, seconds=1.0, times=5), UpstreamTimeout),
        (Fault(kind="malformed", path=path, times=5), UpstreamMalformed),
        (Fault(kind="rate_limit", path=path, seconds=0, times=5), UpstreamRateLimited),
    ]
    for fault, error in cases:
        state.faults = [fault]
        outcome = await tri_state(d.server_info(ref))
        assert isinstance(outcome, Unknown), fault
        assert isinstance(outcome.error, error), (fault, outcome)
    state.faults = []
    assert isinstance(await tri_state(d.server_info(ref)), Found)
    # a 503 that clears after one attempt is retried for a GET ...
    state.faults = [Fault(kind="status", path=path, status=503, times=1)]
    assert isinstance(await tri_state(d.server_info(ref)), Found)
    # ... but a POST is never repeated behind the caller's back
    state.faults = [Fault(kind="status", method="POST", path="/servers", status=502, times=1)]
    before = len(state.servers)
    with pytest.raises(UpstreamUnavailable):
        await d.create_server(spec())
    assert len(state.servers) == before
    # a lock is an unknown too: retry later, never "gone"
    await d.build(ref, "1")
    outcome = await tri_state(d.suspend(ref))
    assert isinstance(outcome, Unknown)
    assert isinstance(outcome.error, ServerLocked)
    await d.aclose()


async def test_latency_knob_and_admin_endpoint(sim: tuple[VirtFusionState, Any]) -> None:
    import httpx2

    state, app = sim
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=PANEL) as http:
        added = await http.post(
            "/_sim/faults", json={"kind": "latency", "path": "/connect", "seconds": 0.2, "times": 1}
        )
        assert added.status_code == 201
        await http.post("/_sim/settings", json={"task_seconds": 0.01})
        assert state.task_seconds == 0.01
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await http.get("/api/v1/connect", headers={"Authorization": "Bearer sim-token"})
        assert answer.status_code == 200
        assert loop.time() - started >= 0.2
        assert (await http.get("/_sim/state")).json()["faults"] == []
        await http.post("/_sim/faults", json={"kind": "status", "status": 502, "times": None})
        assert (
            await http.get("/api/v1/connect", headers={"Authorization": "Bearer sim-token"})
        ).status_code == 502
        assert (await http.delete("/_sim/faults")).status_code == 204
        assert (await http.post("/_sim/faults", json={"nope": 1})).status_code == 422
