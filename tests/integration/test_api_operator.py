"""The operator API at /api/v1 on SQLite and PostgreSQL: tokens and scopes, the audit row of every
call, CRUD round trips, error envelopes and write-only credentials."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from vpsbridge.config import load_settings
from vpsbridge.jobs import queue
from vpsbridge.logs import configure_logging, reset_logging
from vpsbridge.services import tokens
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.store.db import Database
from vpsbridge.store.models import AuditLog
from vpsbridge.web.app import create_app

SECRET = "S3cr3t-platform-credential-value"


@dataclass
class Api:
    client: httpx2.AsyncClient
    ctx: AppContext
    read: str
    write: str
    admin: str

    async def call(self, method: str, path: str, token: str | None, **kwargs: Any) -> httpx2.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)

    async def audit_rows(self) -> list[AuditLog]:
        async with self.ctx.db.session() as session:
            query = select(AuditLog).where(AuditLog.action == "api.request").order_by(AuditLog.id)
            return list((await session.scalars(query)).all())


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    keys = [Fernet.generate_key().decode()]
    settings = load_settings(data_dir=tmp_path, database_url=db_url, encryption_keys=keys)
    # Logs as in production (JSON lines), kept in memory, instead of structlog's slow dev tracebacks.
    configure_logging(settings, stream=io.StringIO())
    ctx = await AppContext.create(settings, db=Database(db_url))
    try:
        app = create_app(context=ctx)
        async with app.router.lifespan_context(app):
            cli = Actor.cli()
            plain = {}
            for scope in ("read", "write", "admin"):
                _out, plain[scope] = await tokens.create_token(ctx, f"{scope}-token", scope, cli)  # type: ignore[arg-type]
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield Api(client, ctx, plain["read"], plain["write"], plain["admin"])
    finally:
        await ctx.close()
        reset_logging()


def envelope(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, error
    assert error["request_id"] == response.headers["x-request-id"]
    return error


# --- authentication and scopes ----------------------------------------------------------------------


async def test_scopes_and_token_failures(api: Api) -> None:
    assert (await api.call("GET", "/products", api.read)).status_code == 200
    denied = envelope(
        await api.call("POST", "/dns-providers", api.read, json={"name": "ns", "type": "powerdns"}),
        403,
        "insufficient_scope",
    )
    assert denied["details"] == {"required_scope": "write", "token_scope": "read"}
    created = await api.call("POST", "/dns-providers", api.write, json={"name": "ns", "type": "powerdns"})
    assert created.status_code == 201, created.text
    envelope(await api.call("GET", "/tokens", api.write), 403, "insufficient_scope")
    assert (await api.call("GET", "/tokens", api.admin)).status_code == 200
    assert (await api.call("DELETE", "/dns-providers/ns", api.admin)).status_code == 204  # admin ⊇ write

    missing = await api.call("GET", "/products", None)
    envelope(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    envelope(await api.call("GET", "/products", "vpsb_0000000000_not-a-real-secret"), 401, "invalid_token")
    basic = await api.call("GET", "/products", None, headers={"Authorization": f"Basic {api.read}"})
    envelope(basic, 401, "unauthorized")
    # A tampered secret with a real prefix is refused as well.
    envelope(await api.call("GET", "/products", api.read[:-2] + "xx"), 401, "invalid_token")


async def test_revoked_and_expired_tokens_are_refused(api: Api) -> None:
    assert (await api.call("GET", "/platforms", api.read)).status_code == 200
    prefix = api.read.split("_")[1]
    revoked = await api.call("DELETE", f"/tokens/{prefix}", api.admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["active"] is False
    assert revoked.json()["revoked_at"]
    envelope(await api.call("GET", "/platforms", api.read), 401, "invalid_token")

    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    made = await api.call(
        "POST", "/tokens", api.admin, json={"name": "old", "scope": "read", "expires_at": past}
    )
    assert made.status_code == 201, made.text
    envelope(await api.call("GET", "/platforms", made.json()["plaintext"]), 401, "invalid_token")


async def test_token_plaintext_is_shown_once(api: Api) -> None:
    made = await api.call("POST", "/tokens", api.admin, json={"name": "ci", "scope": "write"})
    assert made.status_code == 201, made.text
    body = made.json()
    plaintext = body["plaintext"]
    assert plaintext.startswith("vpsb_")
    assert body["token"]["scope"] == "write"
    assert (await api.call("GET", "/ip-pools", plaintext)).status_code == 200
    listing = await api.call("GET", "/tokens", api.admin)
    assert plaintext not in listing.text
    assert plaintext.split("_", 2)[2] not in listing.text
    names = {t["name"]: t for t in listing.json()}
    assert names["ci"]["last_used_at"] is not None
    envelope(
        await api.call("POST", "/tokens", api.admin, json={"name": "x", "scope": "root"}),
        422,
        "validation_error",
    )


# --- audit ------------------------------------------------------------------------------------------


async def test_every_call_leaves_one_audit_row(api: Api) -> None:
    before = len(await api.audit_rows())
    calls = [
        ("GET", "/products", api.read, 200),
        ("POST", "/products", api.read, 403),
        ("GET", "/products/nope", api.read, 404),
        ("POST", "/dns-providers", api.write, 422),
        ("GET", "/tokens", api.admin, 200),
        ("GET", "/products", "vpsb_0000000000_bogus", 401),
    ]
    for method, path, token, status in calls:
        kwargs: dict[str, Any] = {"json": {"name": 5}} if method == "POST" else {}
        response = await api.call(method, path, token, **kwargs)
        assert response.status_code == status, (method, path, response.text)
    # A request with no credential at all is refused but is not a token use: no row.
    assert (await api.call("GET", "/products", None)).status_code == 401
    rows = (await api.audit_rows())[before:]
    assert len(rows) == len(calls)
    token_ids = {}
    for scope in ("read", "write", "admin"):
        principal = await tokens.authenticate_token(api.ctx, getattr(api, scope))
        assert principal is not None
        token_ids[scope] = str(principal.token_id)
    expected_ids = [token_ids["read"]] * 3 + [token_ids["write"], token_ids["admin"], None]
    for row, (method, path, _token, status), token_id in zip(rows, calls, expected_ids, strict=True):
        assert row.actor_type == "token"
        assert row.actor_id == token_id
        assert row.details["method"] == method
        assert row.details["path"] == "/api/v1" + path
        assert row.details["status"] == status
        assert row.details["request_id"]


# --- CRUD and envelopes -----------------------------------------------------------------------------


async def test_dns_provider_round_trip_keeps_credentials_write_only(api: Api) -> None:
    created = await api.call(
        "POST",
        "/dns-providers",
        api.write,
        json={"name": "pdns-main", "type": "powerdns", "url": "http://127.0.0.1:8081",
              "credentials": {"api_key": SECRET}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    provider = created.json()
    assert provider["has_credentials"] is True
    assert "credentials" not in provider
    ref = provider["id"]
    responses = [created]
    responses.append(await api.call("GET", f"/dns-providers/{ref}", api.read))
    responses.append(await api.call("GET", "/dns-providers/pdns-main", api.read))
    responses.append(await api.call("GET", "/dns-providers", api.read))
    patched = await api.call(
        "PATCH",
        "/dns-providers/pdns-main",
        api.write,
        json={"settings": {"ttl": 300}, "credentials": {"api_key": SECRET + "2"}},
    )
    responses.append(patched)
    assert patched.status_code == 200, patched.text
    assert patched.json()["settings"] == {"ttl": 300}
    for response in responses:
        assert response.status_code in (200, 201)
        assert SECRET not in response.text
    envelope(
        await api.call("POST", "/dns-providers", api.write, json={"name": "pdns-main", "type": "powerdns"}),
        409,
        "conflict",
    )
    assert (await api.call("DELETE", "/dns-providers/pdns-main", api.write)).status_code == 204
    envelope(await api.call("GET", "/dns-providers/pdns-main", api.read), 404, "not_found")
    async with api.ctx.db.session() as session:
        audit_text = " ".join(str(r.details) for r in (await session.scalars(select(AuditLog))).all())
    assert SECRET not in audit_text


async def test_validation_errors_name_the_fields(api: Api) -> None:
    response = await api.call("POST", "/ip-pools", api.write, json={"name": "", "vlan": 99999, "bogus": 1})
    error = envelope(response, 422, "validation_error")
    fields = {d["field"] for d in error["details"]}
    assert {"body.name", "body.vlan", "body.network", "body.bogus"} <= fields
    assert "body.network" in error["message"]
    # A semantic check inside a service (Invalid) also names its field.
    bad_net = await api.call("POST", "/ip-pools", api.write, json={"name": "p1", "network": "not-a-network"})
    invalid = envelope(bad_net, 422, "invalid")
    assert invalid["details"]["field"] == "network"
    bad_query = await api.call("GET", "/jobs?limit=0", api.read)
    assert {d["field"] for d in envelope(bad_query, 422, "validation_error")["details"]} == {"query.limit"}


async def test_ip_pool_round_trip(api: Api) -> None:
    created = await api.call(
        "POST",
        "/ip-pools",
        api.write,
        json={"name": "v4-fra", "network": "192.0.2.0/24", "gateway": "192.0.2.1"},
    )
    assert created.status_code == 201, created.text
    pool = created.json()
    assert pool["family"] == 4
    assert pool["network"] == "192.0.2.0/24"
    patched = await api.call("PATCH", f"/ip-pools/{pool['id']}", api.write, json={"vlan": 12})
    assert patched.status_code == 200, patched.text
    assert patched.json()["vlan"] == 12
    listing = await api.call("GET", "/ip-pools", api.read)
    assert [p["name"] for p in listing.json()] == ["v4-fra"]
    assert (await api.call("DELETE", "/ip-pools/v4-fra", api.write)).status_code == 204
    assert (await api.call("GET", "/ip-pools", api.read)).json() == []


async def test_platform_and_product_round_trip(api: Api) -> None:
    from conftest import require

    require(
        importlib.util.find_spec("vpsbridge.platforms.registry") is not None,
        "the platform driver registry (vpsbridge.platforms.registry) is not installed",
    )
    from vpsbridge.services.platforms import known_platform_types

    types = known_platform_types()
    require(bool(types), "no platform driver is registered")
    # Prefer a driver that really speaks HTTP, so the unreachable URL below is a real upstream failure.
    kind = next((t for t in ("virtfusion", "proxmox") if t in types), types[0])
    created = await api.call(
        "POST",
        "/platforms",
        api.write,
        json={
            "name": "vf-1",
            "type": kind,
            "url": "http://127.0.0.1:1",
            "credentials": {"token": SECRET},
        },
    )
    assert created.status_code == 201, created.text
    platform = created.json()
    assert platform["has_credentials"] is True
    product = await api.call(
        "POST", "/products", api.write, json={"name": "VPS S", "platform": "vf-1", "plan": {"memory": 1024}}
    )
    assert product.status_code == 201, product.text
    assert product.json()["platform_name"] == "vf-1"
    in_use = envelope(await api.call("DELETE", "/platforms/vf-1", api.write), 409, "conflict")
    assert "product" in in_use["message"]
    renamed = await api.call("PATCH", f"/products/{product.json()['id']}", api.write, json={"name": "VPS M"})
    assert renamed.json()["name"] == "VPS M"
    for response in (
        created,
        await api.call("GET", "/platforms", api.read),
        await api.call("GET", "/platforms/vf-1", api.read),
    ):
        assert SECRET not in response.text
    # Nothing listens on port 1: the report says so (a failed "connection" check), not a crash.
    tested = await api.call("POST", "/platforms/vf-1/test", api.write)
    assert tested.status_code == 200, tested.text
    report = tested.json()
    assert isinstance(report["checks"], list)
    if kind in ("virtfusion", "proxmox"):
        assert report["ok"] is False
        failed = [c for c in report["checks"] if not c["ok"]]
        assert failed, report
        assert "127.0.0.1:1" in failed[0]["detail"]
    else:
        assert isinstance(report["ok"], bool)
    assert SECRET not in tested.text
    assert (await api.call("DELETE", f"/products/{product.json()['id']}", api.write)).status_code == 204
    assert (await api.call("DELETE", "/platforms/vf-1", api.write)).status_code == 204


# --- jobs -------------------------------------------------------------------------------------------


async def test_jobs_list_show_log_cancel_reset(api: Api) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    job_id = await queue.enqueue(
        api.ctx, "api-test", {"hostname": "a.example", "root_password": SECRET}, run_at=later
    )
    listed = await api.call("GET", "/jobs?status=queued", api.read)
    assert listed.status_code == 200, listed.text
    assert [j["id"] for j in listed.json()] == [job_id]
    shown = await api.call("GET", f"/jobs/{job_id}", api.read)
    assert shown.json()["payload"]["hostname"] == "a.example"
    assert SECRET not in shown.text
    assert SECRET not in listed.text
    envelope(await api.call("POST", f"/jobs/{job_id}/cancel", api.read), 403, "insufficient_scope")
    cancelled = await api.call("POST", f"/jobs/{job_id}/cancel", api.write)
    assert cancelled.json() == {"id": job_id, "status": "cancelled"}
    envelope(await api.call("POST", f"/jobs/{job_id}/cancel", api.write), 409, "conflict")
    log = await api.call("GET", f"/jobs/{job_id}/log", api.read)
    assert any("cancelled" in line["message"] for line in log.json())
    reset = await api.call("POST", f"/jobs/{job_id}/reset", api.write, json={"mode": "retry"})
    assert reset.json() == {"id": job_id, "status": "queued"}
    envelope(await api.call("GET", "/jobs/999999", api.read), 404, "not_found")
    envelope(await api.call("GET", "/jobs/999999/log", api.read), 404, "not_found")
    envelope(
        await api.call("POST", f"/jobs/{job_id}/reset", api.write, json={"mode": "wipe"}),
        422,
        "validation_error",
    )


async def test_a_crash_inside_the_api_is_a_bare_500_and_still_audited(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vpsbridge.services import products

    async def broken(_ctx: AppContext) -> list[Any]:
        raise RuntimeError(f"connection string with {SECRET}")

    monkeypatch.setattr(products, "list_products", broken)
    response = await api.call("GET", "/products", api.read)
    error = envelope(response, 500, "internal_error")
    assert SECRET not in response.text
    assert "RuntimeError" not in error["message"]
    last = (await api.audit_rows())[-1]
    assert last.details["status"] == 500
    assert last.details["path"] == "/api/v1/products"
