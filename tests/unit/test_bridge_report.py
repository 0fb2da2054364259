"""Reporting back to WHMCS: login written with UpdateClientProduct, welcome e-mail sent exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import pytest

from vpsbridge.billing.whmcs import report
from vpsbridge.cache import MemoryCache
from vpsbridge.config import load_settings
from vpsbridge.services.provisioning import CredentialsOut, ServiceEvent


class Ctx:
    def __init__(self, tmp: Path, transport: httpx2.MockTransport, **settings: Any) -> None:
        self.settings = load_settings(data_dir=tmp, **settings)
        self.cache = MemoryCache()
        self.extras: dict[str, Any] = {report.EXTRAS_WHMCS_TRANSPORT: transport}


@pytest.fixture
def calls() -> list[dict[str, str]]:
    return []


@pytest.fixture
def transport(calls: list[dict[str, str]]) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        calls.append(dict(parse_qsl(request.content.decode())))
        return httpx2.Response(200, content=json.dumps({"result": "success"}).encode())

    return httpx2.MockTransport(handle)


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake(_ctx: Any, ref: Any) -> CredentialsOut:
        return CredentialsOut(
            service_id=int(ref),
            username="root",
            password="Real-Root-Pw-42",
            ipv4=["192.0.2.10", "192.0.2.11"],
            ipv6=["2001:db8::10"],
            hostname="vps1.example.net",
        )

    monkeypatch.setattr(report.prov, "service_credentials", fake)


EVENT = ServiceEvent(
    kind="provisioned", event_id="provisioned:job:7", service_id=3, billing_service_id="55", client_id="9"
)


async def test_provisioned_writes_login_and_mails_once(
    tmp_path: Path, transport: Any, calls: list[dict[str, str]]
) -> None:
    ctx = Ctx(tmp_path, transport, whmcs_url="https://billing.example.com", whmcs_api_access_key="ak")
    await report.on_provisioned(ctx, EVENT)  # type: ignore[arg-type]
    await report.on_provisioned(ctx, EVENT)  # type: ignore[arg-type] - the job retried the step
    actions = [c["action"] for c in calls]
    assert actions == ["UpdateClientProduct", "SendEmail", "UpdateClientProduct"]
    update = calls[0]
    assert update["serviceid"] == "55"
    assert update["dedicatedip"] == "192.0.2.10"
    assert update["assignedips"] == "192.0.2.11\n2001:db8::10"
    assert update["servicepassword"] == "Real-Root-Pw-42"
    assert update["accesskey"] == "ak"
    assert calls[1]["messagename"] == report.WELCOME_TEMPLATE


async def test_nothing_is_sent_without_whmcs_settings(
    tmp_path: Path, transport: Any, calls: list[dict[str, str]]
) -> None:
    await report.on_provisioned(Ctx(tmp_path, transport), EVENT)  # type: ignore[arg-type]
    assert calls == []
