"""The /bridge/v1 API on SQLite and PostgreSQL: signatures, product upsert, idempotent create."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.fernet import Fernet

from vpsbridge.billing.whmcs.signing import signed_headers
from vpsbridge.config import load_settings
from vpsbridge.logs import configure_logging, reset_logging
from vpsbridge.services import platforms, products, provisioning
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.store.db import Database
from vpsbridge.web.app import create_app

SECRET = "bridge-secret-for-tests-0123456789"


class Bridge:
    def __init__(self, client: httpx2.AsyncClient, ctx: AppContext) -> None:
        self.client = client
        self.ctx = ctx

    async def call(
        self, kind: str, name: str, payload: dict[str, Any], *, sign: bool = True
    ) -> httpx2.Response:
        path = f"/bridge/v1/{kind}/{name}"
        body = json.dumps(payload).encode()
        headers = signed_headers(SECRET, "POST", path, body, nonce=uuid.uuid4().hex) if sign else {}
        return await self.client.post(path, content=body, headers=headers)


@pytest.fixture
async def bridge(db_url: str, tmp_path: Path) -> AsyncIterator[Bridge]:
    settings = load_settings(
        data_dir=tmp_path,
        database_url=db_url,
        encryption_keys=[Fernet.generate_key().decode()],
        bridge_secret=SECRET,
    )
    configure_logging(settings, stream=io.StringIO())
    ctx = await AppContext.create(settings, db=Database(db_url))
    try:
        app = create_app(context=ctx)
        async with app.router.lifespan_context(app):
            await platforms.create_platform(
                ctx,
                {"name": "lab", "type": "dummy", "url": "dummy://lab", "credentials": {"token": "t"}},
                Actor.cli(),
            )
            async with httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app), base_url="http://t"
            ) as client:
                yield Bridge(client, ctx)
    finally:
        await ctx.close()
        reset_logging()


def create_params(service: int, **extra: Any) -> dict[str, Any]:
    params = {
        "serviceid": service,
        "userid": 77,
        "pid": 12,
        "domain": f"vps{service}.example.net",
        "configoption1": "lab",
        "configoption4": "1",
        "configoption8": "20",
        "clientsdetails": {"firstname": "Grace", "lastname": "Hopper", "email": "grace@example.net"},
        "customfields": {"Initial Operating System": "debian-12"},
        "configoptions": {"CPU Cores": "2|2 cores", "Memory": "2048|2 GB", "Disk": "20|20 GB"},
    }
    params.update(extra)
    return {"params": params, "product": {"id": 12, "name": "Lab VPS", "stockcontrol": "1"}}


async def test_signed_test_connection_lists_platforms(bridge: Bridge) -> None:
    response = await bridge.call("module", "TestConnection", {"params": {}})
    assert response.status_code == 200
    assert response.json()["platforms"] == {"lab": "lab (dummy)"}


async def test_unsigned_and_unknown_calls_are_refused(bridge: Bridge) -> None:
    unsigned = await bridge.call("module", "TestConnection", {}, sign=False)
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "unsigned"
    unknown = await bridge.call("module", "FormatDisk", {})
    assert unknown.status_code == 404
    assert "FormatDisk" in unknown.json()["error"]["message"]


async def test_create_upserts_the_product_and_is_idempotent(bridge: Bridge) -> None:
    first = await bridge.call("module", "CreateAccount", create_params(501))
    assert first.status_code == 200, first.text
    second = await bridge.call("module", "CreateAccount", create_params(501))
    assert second.status_code == 200
    assert second.json()["replayed"] is True
    assert second.json()["service"]["id"] == first.json()["service"]["id"]
    services = await provisioning.list_services(bridge.ctx, client_id="77")
    assert [s.billing_service_id for s in services] == ["501"]
    product = await products.get_product_by_billing_id(bridge.ctx, "12")
    assert product is not None
    assert product.name == "Lab VPS"
    assert product.stock_control is True
    assert product.stock_buffer_pct == 20.0


async def test_create_without_os_names_the_field(bridge: Bridge) -> None:
    response = await bridge.call("module", "CreateAccount", create_params(502, customfields={}))
    assert response.status_code == 422
    assert "Initial Operating System" in response.json()["error"]["message"]
    assert await provisioning.list_services(bridge.ctx, client_id="77") == []
