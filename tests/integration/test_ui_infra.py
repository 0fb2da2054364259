"""The shared web-UI infrastructure: sessions, one-time tokens, CSRF, same-origin, rate limits,
CSP nonces, escaping and translations - on SQLite and PostgreSQL, through a real ASGI app."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx2 as httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import APIRouter, Depends, FastAPI, Request, Response

from vpsbridge.config import load_settings
from vpsbridge.services import web_sessions
from vpsbridge.services.context import AppContext
from vpsbridge.services.web_sessions import SessionView
from vpsbridge.store.db import Database
from vpsbridge.web.ui import (
    RateLimit,
    UiRoute,
    cookie_name,
    enforce_rate_limit,
    extract,
    render,
    session_guard,
    start_session,
)
from vpsbridge.web.ui.i18n import parse_accept_language, pick_language, translations

ORIGIN = "http://ui.test"
Session = Annotated[SessionView, Depends(session_guard("demo"))]


@pytest.fixture
async def ctx(db: Database, tmp_path: Path) -> AsyncIterator[AppContext]:
    settings = load_settings(
        database_url=db.url,
        data_dir=tmp_path,
        encryption_keys=[Fernet.generate_key().decode()],
        secure_cookies=False,
    )
    context = await AppContext.create(settings, db=db)
    yield context
    await context.cache.close()


def build_app(ctx: AppContext) -> FastAPI:
    app = FastAPI()
    app.state.ctx = ctx
    app.state.settings = ctx.settings
    router = APIRouter(route_class=UiRoute)

    @router.get("/signin/{subject}")
    async def signin(subject: str, request: Request) -> Response:
        response = Response("ok")
        await start_session(request, response, "demo", subject, {"n": 1})
        return response

    @router.get("/page")
    async def page(request: Request, session: Session) -> Response:
        return render(
            request,
            "ui/error.html",
            {"error": _Err(), "message": request.query_params.get("m", ""), "action": None},
        )

    @router.post("/act")
    async def act(request: Request, session: Session) -> dict[str, str]:
        await enforce_rate_limit(ctx, "act", session.subject, RateLimit(1, 30))
        return {"done": session.subject}

    app.include_router(router)
    return app


class _Err:
    status = 200
    code = "demo"


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN)


async def test_one_time_token_is_single_use_even_under_a_race(ctx: AppContext) -> None:
    token = await web_sessions.mint_one_time_token(ctx, "portal", "client-7", {"service": 3})
    results = await asyncio.gather(
        *(web_sessions.consume_one_time_token(ctx, "portal", token) for _ in range(6))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].subject == "client-7"
    assert winners[0].data == {"service": 3}
    assert await web_sessions.consume_one_time_token(ctx, "portal", token) is None


async def test_one_time_token_kind_and_expiry(ctx: AppContext) -> None:
    admin_token = await web_sessions.mint_one_time_token(ctx, "admin", "1")
    assert await web_sessions.consume_one_time_token(ctx, "portal", admin_token) is None
    old = await web_sessions.mint_one_time_token(ctx, "portal", "c", ttl=dt.timedelta(seconds=-1))
    assert await web_sessions.consume_one_time_token(ctx, "portal", old) is None
    # a one-time token is not a session cookie
    fresh = await web_sessions.mint_one_time_token(ctx, "portal", "c")
    assert await web_sessions.load_session(ctx, "portal", fresh) is None


async def test_session_lifecycle_and_expiry(ctx: AppContext) -> None:
    cookie, view = await web_sessions.create_session(ctx, "portal", "c1", {"a": 1})
    loaded = await web_sessions.load_session(ctx, "portal", cookie)
    assert loaded is not None
    assert loaded.subject == "c1"
    assert loaded.csrf_token == view.csrf_token
    assert await web_sessions.load_session(ctx, "admin", cookie) is None  # areas do not mix
    assert view.id != cookie  # only the hash is stored
    await web_sessions.update_session_data(ctx, view.id, {"a": 2})
    again = await web_sessions.load_session(ctx, "portal", cookie)
    assert again is not None
    assert again.data == {"a": 2}
    await web_sessions.destroy_session(ctx, view.id)
    assert await web_sessions.load_session(ctx, "portal", cookie) is None
    stale, _view = await web_sessions.create_session(ctx, "portal", "c2", ttl=dt.timedelta(seconds=-5))
    assert await web_sessions.load_session(ctx, "portal", stale) is None


async def test_cookie_flags_csrf_origin_and_rate_limit(ctx: AppContext) -> None:
    async with await _client(build_app(ctx)) as client:
        assert (await client.get("/page")).status_code == 401
        signin = await client.get("/signin/c9")
        set_cookie = signin.headers["set-cookie"].lower()
        assert "httponly" in set_cookie
        assert "samesite=lax" in set_cookie
        assert "path=/" in set_cookie
        name = cookie_name("demo", ctx.settings)
        assert name == "vpsb_demo"
        page = await client.get("/page", params={"m": '<script>alert("x")</script>\u202e'})
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(&#34;x&#34;)" in page.text
        csp = page.headers["content-security-policy"]
        nonce = csp.split("'nonce-")[1].split("'")[0]
        assert f'nonce="{nonce}"' in page.text
        assert "unsafe-inline" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        assert len(token) > 20

        no_token = await client.post("/act", headers={"Origin": ORIGIN})
        assert no_token.status_code == 403
        wrong = await client.post("/act", headers={"Origin": ORIGIN, "X-CSRF-Token": token + "x"})
        assert wrong.status_code == 403
        foreign = await client.post("/act", headers={"Origin": "https://evil.example", "X-CSRF-Token": token})
        assert foreign.status_code == 403
        cross = await client.post("/act", headers={"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": token})
        assert cross.status_code == 403
        ok = await client.post(
            "/act", headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}, data={"csrf_token": token}
        )
        assert ok.status_code == 200
        assert ok.json() == {"done": "c9"}
        limited = await client.post(
            "/act", headers={"Origin": ORIGIN, "X-CSRF-Token": token, "Accept": "application/json"}
        )
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 30
        assert limited.json()["error"]["code"] == "rate_limited"

        # signing in again replaces the session: the old cookie stops working
        old_cookie = client.cookies.get(name)
        await client.get("/signin/c9")
        assert client.cookies.get(name) != old_cookie
        assert await web_sessions.load_session(ctx, "demo", old_cookie) is None


def test_language_choice_and_german_catalogue_is_complete() -> None:
    assert parse_accept_language("de-CH, fr;q=0.5, en;q=0.8") == ["de", "en", "fr"]
    assert pick_language(None, "fr, de;q=0.4") == "de"
    assert pick_language("en", "de") == "en"
    assert pick_language("xx", "xx") == "en"
    german = translations("de")
    assert german.gettext("Cancel") == "Abbrechen"
    assert german.gettext("Too many requests; try again in %(seconds)s s.") % {"seconds": 3} == (
        "Zu viele Anfragen; versuchen Sie es in 3 s erneut."
    )
    assert extract.update("ui", check=True) == []  # every shared string has a German translation
