"""The Proxmox HTTP client: auth headers, error sentences, retries, node limits, UPIDs and tasks."""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from vpsbridge.http import UpstreamNotFound, UpstreamRejected, UpstreamUnavailable
from vpsbridge.platforms.errors import InvalidRequest, ServerLocked
from vpsbridge.platforms.proxmox.client import ProxmoxClient, decode_sshkeys, encode_sshkeys, parse_version
from vpsbridge.platforms.proxmox.errors import TaskFailed, TaskTimeout, VmidTaken
from vpsbridge.platforms.proxmox.upid import exit_ok, format_upid, is_upid, parse_upid

UPID = "UPID:pve1:0000A1B2:0011C3D4:65A0F00D:qmclone:9000:vpsbridge@pve!deploy:"
PVE_URLENCODED = re.compile(r"^[-%a-zA-Z0-9_.!~*'()]*$")


def client(handler: Callable[[httpx2.Request], Any], **kw: Any) -> ProxmoxClient:
    defaults: dict[str, Any] = {"token_id": "vpsbridge@pve!deploy", "token_secret": "0123-secret-4567"}
    defaults.update(kw)
    if "username" in kw:
        defaults.pop("token_id")
        defaults.pop("token_secret")
    return ProxmoxClient(
        "https://pve:8006", transport=httpx2.MockTransport(handler), retry_wait_initial=0.001, **defaults
    )


def reply(data: Any = None, status: int = 200, reason: str | None = None, **body: Any) -> httpx2.Response:
    extensions = {"reason_phrase": reason.encode()} if reason else {}
    return httpx2.Response(status, json={"data": data, **body}, extensions=extensions)


def test_upid_parsing() -> None:
    upid = parse_upid(UPID)
    assert (upid.node, upid.type, upid.id, upid.user) == ("pve1", "qmclone", "9000", "vpsbridge@pve!deploy")
    assert upid.pid == 0xA1B2
    assert upid.starttime == 0x65A0F00D
    assert (
        format_upid("pve1", 0xA1B2, 0x11C3D4, 0x65A0F00D, "qmclone", "9000", "vpsbridge@pve!deploy") == UPID
    )
    assert is_upid(UPID)
    for bad in ("", "UPID:pve1:1:2:3:x:y:z:", UPID[:-1], "OK"):
        assert not is_upid(bad)
        with pytest.raises(ValueError, match="task id"):
            parse_upid(bad)


@pytest.mark.parametrize(
    ("status", "ok"),
    [
        ("OK", True),
        ("WARNINGS: 3", True),
        ("WARNINGS: x", False),
        ("clone failed: no space", False),
        (None, False),
    ],
)
def test_exit_status(status: str | None, ok: bool) -> None:
    assert exit_ok(status) is ok


def test_sshkeys_double_encoding() -> None:
    keys = ["ssh-ed25519 AAAAC3Nz+/abc= me@host", "ssh-rsa AAAAB3== you@host:22"]
    encoded = encode_sshkeys(keys)
    assert PVE_URLENCODED.match(encoded)
    assert "%0A" in encoded
    assert "%2F" in encoded
    assert "+" not in encoded
    assert decode_sshkeys(encoded) == keys
    assert decode_sshkeys(None) == []


async def test_token_header_and_form_encoding() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return reply(None)

    c = client(handler)
    await c.put(
        "/nodes/pve1/qemu/100/config", {"sshkeys": encode_sshkeys(["ssh-ed25519 A+/ b"]), "onboot": True}
    )
    await c.get("/nodes/pve1/qemu/100/config", {"current": False})
    put, get = seen
    assert put.headers["authorization"] == "PVEAPIToken=vpsbridge@pve!deploy=0123-secret-4567"
    body = put.content.decode()
    assert "sshkeys=ssh-ed25519%2520A%252B%252F%2520b" in body  # encoded once by us, once by the form
    assert urllib.parse.parse_qs(body)["onboot"] == ["1"]
    assert get.url.params["current"] == "0"
    assert str(get.url).startswith("https://pve:8006/api2/json/nodes/pve1/")
    await c.aclose()


async def test_errors_are_readable_and_typed() -> None:
    answers = {
        "/bad": reply(None, 400, "Parameter verification failed.", errors={"newid": "invalid format"}),
        "/gone": reply(None, 500, "Configuration file 'nodes/pve1/qemu-server/123.conf' does not exist"),
        "/taken": reply(None, 500, "unable to create VM 123: VM 123 already exists on node 'pve2'"),
        "/locked": reply(None, 500, "VM is locked (clone)"),
        "/lockfile": reply(None, 500, "can't lock file '/var/lock/qemu-server/lock-5.conf' - got timeout"),
        "/running": reply(None, 500, "VM 5 is running - destroy failed"),
        "/boom": reply(None, 500, message="unexpected error in the storage layer"),
        "/storage": reply(None, 500, "storage 'x' does not exist"),
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        return answers[request.url.path.removeprefix("/api2/json")]

    c = client(handler, max_retries=0)
    with pytest.raises(UpstreamRejected, match=r"Parameter verification failed\. - newid: invalid format"):
        await c.post("/bad")
    with pytest.raises(UpstreamNotFound, match="does not exist"):
        await c.get("/gone")
    with pytest.raises(VmidTaken):
        await c.post("/taken")
    with pytest.raises(ServerLocked):
        await c.post("/locked")
    with pytest.raises(ServerLocked, match="got timeout"):
        await c.put("/lockfile")
    with pytest.raises(InvalidRequest, match="destroy failed"):
        await c.delete("/running")
    with pytest.raises(UpstreamUnavailable, match="storage layer") as info:
        await c.get("/boom")
    assert not isinstance(info.value, UpstreamNotFound)
    with pytest.raises(InvalidRequest):
        await c.get("/storage")  # a missing storage is a refusal, not a missing VM
    await c.aclose()


async def test_595_596_retried_only_when_idempotent() -> None:
    calls: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request.method)
        if len(calls) % 3:
            return reply(None, 596, "Connection timed out")
        return reply("ok")

    c = client(handler, max_retries=2)
    assert await c.get("/nodes/pve2/status") == "ok"
    assert calls == ["GET"] * 3
    calls.clear()
    with pytest.raises(UpstreamUnavailable, match="596"):
        await c.post("/nodes/pve2/qemu/9000/clone", {"newid": 101})
    assert calls == ["POST"]
    await c.aclose()


async def test_connection_reset_retried_for_get() -> None:
    attempts = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise httpx2.ReadError("connection reset by peer", request=request)
        return reply([])

    c = client(handler)
    assert await c.get("/nodes") == []
    assert attempts == 2
    await c.aclose()


async def test_ticket_auth_logs_in_once_and_sends_csrf() -> None:
    seen: list[httpx2.Request] = []

    async def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.url.path.endswith("/access/ticket"):
            await asyncio.sleep(0.01)
            return reply(
                {"ticket": "PVE:vnc@pve:ABC::sig", "CSRFPreventionToken": "CSRF:tok", "username": "vnc@pve"}
            )
        return reply({"port": "5900", "ticket": "PVEVNC:x"})

    c = client(handler, username="vnc@pve", password="console-secret")
    await asyncio.gather(*(c.post("/nodes/pve1/qemu/100/vncproxy", {"websocket": True}) for _ in range(3)))
    logins = [r for r in seen if r.url.path.endswith("/access/ticket")]
    assert len(logins) == 1
    assert urllib.parse.parse_qs(logins[0].content.decode()) == {
        "username": ["vnc@pve"],
        "password": ["console-secret"],
    }
    for request in seen[1:]:
        assert request.headers["cookie"] == "PVEAuthCookie=PVE:vnc@pve:ABC::sig"
        assert request.headers["csrfpreventiontoken"] == "CSRF:tok"
        assert "authorization" not in request.headers
    assert "console-secret" not in c.redact_text("password=console-secret")
    await c.aclose()


async def test_per_node_concurrency_limit() -> None:
    active: dict[str, int] = {}
    peak: dict[str, int] = {}

    async def handler(request: httpx2.Request) -> httpx2.Response:
        node = request.url.path.split("/")[4]
        active[node] = active.get(node, 0) + 1
        peak[node] = max(peak.get(node, 0), active[node])
        await asyncio.sleep(0.01)
        active[node] -= 1
        return reply({})

    c = client(handler, node_concurrency=2)
    await asyncio.gather(
        *(c.get("/nodes/pve1/status") for _ in range(8)), *(c.get("/nodes/pve2/status") for _ in range(8))
    )
    assert peak == {"pve1": 2, "pve2": 2}
    await c.aclose()


async def test_wait_task_outcomes() -> None:
    states: dict[str, list[dict[str, Any]]] = {
        "ok": [{"status": "running"}, {"status": "stopped", "exitstatus": "WARNINGS: 1"}],
        "bad": [{"status": "stopped", "exitstatus": "clone failed: out of space"}],
        "slow": [{"status": "running"}] * 1000,
    }
    upids = {k: format_upid("pve1", 1, 2, 3, "qmclone", k, "root@pam") for k in states}

    def handler(request: httpx2.Request) -> httpx2.Response:
        upid = urllib.parse.unquote(request.url.path.split("/tasks/")[1].rsplit("/", 1)[0])
        which = next(k for k, v in upids.items() if v == upid)
        if request.url.path.endswith("/log"):
            return reply([{"n": 1, "t": "starting"}, {"n": 2, "t": "TASK ERROR: clone failed: out of space"}])
        return reply(states[which].pop(0))

    c = client(handler)
    status = await c.wait_task(upids["ok"], interval=0.001)
    assert status["exitstatus"] == "WARNINGS: 1"
    with pytest.raises(TaskFailed, match="out of space") as info:
        await c.wait_task(upids["bad"], interval=0.001)
    assert info.value.log_tail[-1].startswith("TASK ERROR")
    with pytest.raises(TaskTimeout):
        await c.wait_task(upids["slow"], timeout=0.05, interval=0.001)
    await c.aclose()


def test_version_parsing_and_constructor_rules() -> None:
    assert parse_version("8.2.4") == (8, 2)
    assert parse_version("9") == (9, 0)
    with pytest.raises(ValueError, match="either"):
        ProxmoxClient("https://pve:8006")
    with pytest.raises(ValueError, match="secret"):
        ProxmoxClient("https://pve:8006", token_id="a@pve!b")
