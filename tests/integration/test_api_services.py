"""``/api/v1/services`` on SQLite and PostgreSQL: the lifecycle over HTTP, scopes, error envelopes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from provisioning_support import ACTOR, World, world

from vpsbridge.logs import configure_logging
from vpsbridge.services import tokens
from vpsbridge.web.app import create_app

__all__ = ["world"]


@pytest.fixture
async def http(world: World) -> AsyncIterator[tuple[httpx2.AsyncClient, dict[str, str]]]:
    configure_logging(world.app.settings, stream=io.StringIO())
    app = create_app(context=world.app)
    async with app.router.lifespan_context(app):
        plain = {}
        for scope in ("read", "write"):
            _out, plain[scope] = await tokens.create_token(world.app, f"{scope}-t", scope, ACTOR)  # type: ignore[arg-type]
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, plain


async def _call(
    http: tuple[httpx2.AsyncClient, dict[str, str]], method: str, path: str, scope: str = "write", **kw: Any
) -> httpx2.Response:
    client, plain = http
    return await client.request(
        method, "/api/v1/services" + path, headers={"Authorization": f"Bearer {plain[scope]}"}, **kw
    )


async def test_lifecycle_over_http(world: World, http: tuple[httpx2.AsyncClient, dict[str, str]]) -> None:
    body = world.create_request("4001")
    created = await _call(http, "POST", "", json=body)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert created.json()["status"] == "provisioning"
    again = await _call(http, "POST", "", json=body)
    assert again.json()["id"] == sid
    await world.drain()
    shown = await _call(http, "GET", "/billing:4001", scope="read")
    assert shown.json()["status"] == "active"
    assert "password" not in shown.text
    # A read token cannot see the login; a write token can.
    assert (await _call(http, "GET", f"/{sid}/credentials", scope="read")).status_code == 403
    creds = await _call(http, "GET", f"/{sid}/credentials")
    assert creds.status_code == 200
    assert creds.json()["username"] == "root"
    suspended = await _call(http, "POST", f"/{sid}/suspend", json={"reason": "overdue"})
    assert suspended.json()["service"]["status"] == "suspended"
    busy = await _call(http, "POST", f"/{sid}/power", json={"action": "start"})
    assert busy.status_code == 409
    assert "suspended" in busy.json()["error"]["message"]
    await _call(http, "POST", f"/{sid}/unsuspend")
    await world.drain()
    terminated = await _call(http, "POST", f"/{sid}/terminate", json={"delay_seconds": 0})
    assert terminated.status_code == 202
    assert terminated.json()["outcome"] == "queued"
    await world.drain()
    listed = await _call(http, "GET", "?status=terminated", scope="read")
    assert [s["id"] for s in listed.json()] == [sid]


async def test_errors_are_envelopes(world: World, http: tuple[httpx2.AsyncClient, dict[str, str]]) -> None:
    unknown = await _call(http, "POST", "", json=world.create_request("4002", options={"Colour": "red"}))
    assert unknown.status_code == 422
    assert "Colour" in unknown.json()["error"]["message"]
    missing = await _call(http, "GET", "/billing:nope", scope="read")
    assert missing.status_code == 404
    typo = await _call(http, "POST", "", json={**world.create_request("4003"), "hostnmae": "x"})
    assert typo.status_code == 422
    assert (await _call(http, "POST", "", scope="read", json=world.create_request("4004"))).status_code == 403
