"""The operator console over HTTP: every route needs a signed-in operator, every POST needs the CSRF
token and a same-origin request, hostile strings render escaped, operator actions are audited, and
the sign-in flows (password, TOTP, WHMCS SSO) behave - on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from admin_support import PASSWORD, audit_actions, ctx, make_admin, seed_catalog, seed_job
from fastapi.routing import APIRoute
from sqlalchemy import update

from vpsbridge.services import admin_auth
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.store.models import Server, UpstreamRequest
from vpsbridge.web.admin import MODULES, PREFIX
from vpsbridge.web.app import create_app

__all__ = ["ctx"]

ORIGIN = "https://console.test"
SAME = {"origin": ORIGIN, "sec-fetch-site": "same-origin"}
HOSTILE = "<script>alert(1)</script>\"'\u202eevil"


def _client(ctx: AppContext) -> httpx.AsyncClient:
    app = create_app(context=ctx, migrate=False)
    app.state.ctx = ctx
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN, follow_redirects=False)


def _token(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" (?:content|value)="([^"]*)"', html)
    assert found is not None, f"no {name} in page"
    return found.group(1)


async def _login(
    client: httpx.AsyncClient, username: str = "alice", password: str = PASSWORD
) -> httpx.Response:
    form = await client.get("/admin/login")
    assert form.status_code == 200
    return await client.post(
        "/admin/login",
        data={"username": username, "password": password, "login_token": _token(form.text, "login_token")},
        headers=SAME,
    )


@pytest.fixture
async def signed(ctx: AppContext) -> AsyncIterator[tuple[httpx.AsyncClient, str, dict[str, int]]]:
    """A signed-in client, its CSRF token and the ids of the sample rows."""
    await make_admin(ctx)
    ids = await seed_catalog(ctx)
    ids["job"] = await seed_job(ctx)
    async with _client(ctx) as client:
        answer = await _login(client)
        assert answer.status_code == 303
        page = await client.get("/admin/")
        assert page.status_code == 200
        yield client, _token(page.text, "csrf-token"), ids


def _admin_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the console, from its page modules."""
    return [
        (method, PREFIX + route.path)
        for module in MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in sorted((route.methods or set()) - {"HEAD"})
    ]


PUBLIC = {
    ("GET", "/admin/login"),
    ("POST", "/admin/login"),
    ("POST", "/admin/login/totp"),
    ("GET", "/admin/sso"),
}


def _fill(path: str, ids: dict[str, int]) -> str:
    values = {
        "service_id": ids["service1"],
        "job_id": ids["job"],
        "platform_id": ids["platform"],
        "product_id": ids["product"],
        "pool_id": 1,
        "provider_id": 1,
        "request_id": 1,
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


async def test_every_console_route_needs_a_signed_in_operator(ctx: AppContext) -> None:
    ids = await seed_catalog(ctx)
    ids["job"] = await seed_job(ctx)
    routes = [r for r in _admin_routes() if r not in PUBLIC]
    assert len(routes) >= 40
    # Provisioning from the console is a state-changing page like every other.
    assert {("GET", "/admin/services/new"), ("POST", "/admin/services/new")} <= set(routes)
    async with _client(ctx) as client:
        for method, path in routes:
            answer = await client.request(method, _fill(path, ids), headers=SAME)
            if method == "GET":
                assert answer.status_code == 303, (method, path)
                assert answer.headers["location"].startswith("/admin/login?next=")
            else:
                assert answer.status_code == 401, (method, path, answer.status_code)


async def test_posts_need_csrf_token_and_same_origin(
    signed: tuple[httpx.AsyncClient, str, dict[str, int]],
) -> None:
    client, csrf, ids = signed
    posts = [p for m, p in _admin_routes() if m == "POST" and ("POST", p) not in PUBLIC]
    assert len(posts) >= 25
    for path in posts:
        url = _fill(path, ids)
        no_token = await client.post(url, data={}, headers=SAME)
        assert no_token.status_code == 403, (path, no_token.status_code)
        wrong = await client.post(url, data={"csrf_token": "x" * 40}, headers=SAME)
        assert wrong.status_code == 403, path
        foreign = await client.post(
            url, data={"csrf_token": csrf}, headers={"origin": "https://evil.example", "x-csrf-token": csrf}
        )
        assert foreign.status_code == 403, path
        cross_site = await client.post(
            url, data={"csrf_token": csrf}, headers={"sec-fetch-site": "cross-site"}
        )
        assert cross_site.status_code == 403, path
    # The public sign-in forms are protected too: a login token, and same-origin.
    client.cookies.clear()
    assert (
        await client.post("/admin/login", data={"username": "alice", "password": PASSWORD}, headers=SAME)
    ).status_code == 403
    assert (await client.post("/admin/login/totp", data={"code": "123456"}, headers=SAME)).status_code == 403
    form = await client.get("/admin/login")
    foreign_login = await client.post(
        "/admin/login",
        data={"username": "alice", "password": PASSWORD, "login_token": _token(form.text, "login_token")},
        headers={"origin": "https://evil.example"},
    )
    assert foreign_login.status_code == 403


async def test_every_page_renders_and_hostile_strings_are_escaped(
    ctx: AppContext, signed: tuple[httpx.AsyncClient, str, dict[str, int]]
) -> None:
    client, _, ids = signed
    async with ctx.db.session() as session:
        await session.execute(update(Server).where(Server.id == ids["server1"]).values(hostname=HOSTILE))
        session.add(
            UpstreamRequest(
                client="virtfusion:1",
                method="GET",
                url=f"https://x/{HOSTILE}",
                status=500,
                outcome="unknown",
                error=HOSTILE,
                job_id=ids["job"],
            )
        )
    async with ctx.db.session() as session:
        from vpsbridge.services.audit import record

        await record(session, Actor("client", HOSTILE), "ptr.update", "ip", HOSTILE, {"ptr": HOSTILE})
    pages = [
        "/admin/",
        "/admin/services",
        f"/admin/services/{ids['service1']}",
        "/admin/services?q=%3Cscript",
        "/admin/services/new",
        f"/admin/services/new?product={ids['product']}",
        "/admin/jobs",
        f"/admin/jobs/{ids['job']}",
        "/admin/platforms",
        f"/admin/platforms/{ids['platform']}",
        "/admin/platforms/new",
        "/admin/products",
        f"/admin/products/{ids['product']}",
        "/admin/products/new",
        "/admin/pools",
        "/admin/pools/new",
        "/admin/dns",
        "/admin/dns/new",
        "/admin/stock",
        f"/admin/stock/{ids['product']}",
        "/admin/upstream",
        "/admin/upstream?q=script",
        "/admin/audit",
        "/admin/account",
    ]
    for path in pages:
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        assert "<script>alert(1)" not in answer.text, path
        assert answer.headers["cache-control"] == "no-store"
        assert "nonce-" in answer.headers["content-security-policy"]
    for path in (
        f"/admin/services/{ids['service1']}",
        "/admin/upstream",
        "/admin/audit",
        f"/admin/jobs/{ids['job']}",
    ):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (await client.get(path)).text, path


async def test_operator_actions_are_audited(
    ctx: AppContext, signed: tuple[httpx.AsyncClient, str, dict[str, int]]
) -> None:
    client, csrf, ids = signed
    h = {**SAME, "x-csrf-token": csrf}

    async def post(path: str, data: dict[str, str] | None = None) -> httpx.Response:
        answer = await client.post(path, data=data or {}, headers=h)
        assert answer.status_code in (200, 303), (path, answer.status_code, answer.text[:400])
        return answer

    await post(f"/admin/services/{ids['service1']}/server-id", {"external_id": "9001"})
    await post(f"/admin/jobs/{ids['job']}/reset", {"mode": "done"})
    await post(f"/admin/jobs/{ids['job']}/delete")
    created = await post(
        "/admin/platforms/new",
        {
            "name": "dummy-2",
            "type": "dummy",
            "url": "dummy://two",
            "secret_token": "s3cr3t-tok",
            "enabled": "on",
        },
    )
    platform_id = int(created.headers["location"].split("/")[-1].split("?")[0])
    await post(f"/admin/platforms/{platform_id}", {"name": "dummy-2b", "url": "dummy://two", "enabled": "on"})
    await post(
        f"/admin/products/{ids['product']}",
        {
            "name": "Small VPS",
            "platform": str(ids["platform"]),
            "plan": '{"cpu_cores": 2, "memory_mb": 2048, "disk_gb": 40}',
            "stock_buffer_pct": "5",
            "enabled": "on",
        },
    )
    pool = await post("/admin/pools/new", {"name": "v4-demo", "network": "198.51.100.0/24", "enabled": "on"})
    pool_id = int(pool.headers["location"].split("/")[-1].split("?")[0])
    await post(f"/admin/pools/{pool_id}/delete")
    await post(f"/admin/platforms/{platform_id}/delete")
    await post("/admin/stock/recalculate")
    rows = [r for r in await audit_actions(ctx) if r.actor_type == "admin" and r.action != "admin.login"]
    actions = [r.action for r in rows]
    for expected in (
        "service.server_id",
        "job.reset",
        "job.delete",
        "platform.create",
        "platform.update",
        "product.update",
        "pool.create",
        "pool.delete",
        "platform.delete",
        "stock.recalculate",
    ):
        assert expected in actions, (expected, actions)
    admin_id = rows[0].actor_id
    assert admin_id is not None
    assert all(r.actor_id == admin_id for r in rows)
    # Secrets never come back: the edit page shows "unchanged" and not the stored value.
    page = await client.get(f"/admin/platforms/{ids['platform']}")
    assert "unchanged — enter a new value to replace" in page.text
    assert "t0ken-value" not in page.text


async def test_service_filters_are_remembered_per_browser(
    signed: tuple[httpx.AsyncClient, str, dict[str, int]],
) -> None:
    client, _, _ids = signed
    filtered = await client.get("/admin/services?status=suspended")
    assert "db1.example.net" in filtered.text
    assert "web1.example.net" not in filtered.text
    again = await client.get("/admin/services")  # no query: the browser's last filters apply
    assert "db1.example.net" in again.text
    assert "web1.example.net" not in again.text
    cleared = await client.get("/admin/services?reset=1")
    assert "db1.example.net" in cleared.text
    assert "web1.example.net" in cleared.text
    assert "web1.example.net" in (await client.get("/admin/services")).text


async def test_password_login_errors_and_safe_redirects(ctx: AppContext) -> None:
    await make_admin(ctx)
    async with _client(ctx) as client:
        wrong = await _login(client, password="not the password!")
        assert wrong.status_code == 401
        assert "Wrong username or password." in wrong.text
        form = await client.get("/admin/login?next=//evil.example/x")
        answer = await client.post(
            "/admin/login",
            data={
                "username": "alice",
                "password": PASSWORD,
                "login_token": _token(form.text, "login_token"),
                "next": "//evil.example/x",
            },
            headers=SAME,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/admin/"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "Secure" in cookie
        assert "samesite=lax" in cookie.lower()
        out = await client.post(
            "/admin/logout",
            headers={**SAME, "x-csrf-token": _token((await client.get("/admin/")).text, "csrf-token")},
        )
        assert out.status_code == 303
        assert (await client.get("/admin/")).status_code == 303


async def test_totp_login_through_the_pages(ctx: AppContext) -> None:
    admin_id = await make_admin(ctx)
    from vpsbridge.services.admins import list_admins

    admin = (await list_admins(ctx))[0]
    enrolment = admin_auth.start_totp_enrolment(ctx, admin)
    await admin_auth.confirm_totp_enrolment(
        ctx, admin_id, enrolment.ticket, admin_auth.totp_now(enrolment.secret), Actor.cli()
    )
    async with _client(ctx) as client:
        first = await _login(client)
        assert first.status_code == 200
        assert 'name="ticket"' in first.text
        ticket = _token(first.text, "ticket")
        bad = await client.post(
            "/admin/login/totp",
            data={"ticket": ticket, "code": "000000", "login_token": _token(first.text, "login_token")},
            headers=SAME,
        )
        assert bad.status_code == 401
        code = admin_auth.hotp(enrolment.secret, admin_auth.totp_step() + 1)
        good = await client.post(
            "/admin/login/totp",
            data={"ticket": ticket, "code": code, "login_token": _token(bad.text, "login_token")},
            headers=SAME,
        )
        assert good.status_code == 303
        assert (await client.get("/admin/")).status_code == 200


async def test_whmcs_sso_link_signs_in_once(ctx: AppContext) -> None:
    await make_admin(ctx)
    minted = await admin_auth.mint_admin_sso(ctx, "alice", Actor("bridge", "whmcs"))
    async with _client(ctx) as client:
        first = await client.get(minted.path)
        assert first.status_code == 303
        assert (await client.get("/admin/")).status_code == 200
    async with _client(ctx) as other:
        again = await other.get(minted.path)
        assert again.status_code == 403
        assert "already used" in again.text
