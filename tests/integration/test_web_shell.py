"""The web shell: probes, metrics, local API docs, error envelopes, request ids and headers."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from vpsbridge.config import Settings, load_settings
from vpsbridge.logs import configure_logging, reset_logging
from vpsbridge.services.context import AppContext
from vpsbridge.store.db import Database
from vpsbridge.store.models import Base, Job
from vpsbridge.web import docs
from vpsbridge.web.app import create_app


def make_settings(tmp_path: Path, db_url: str | None = None, **overrides: Any) -> Settings:
    url = db_url or f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    keys = [Fernet.generate_key().decode()]
    return load_settings(data_dir=tmp_path, database_url=url, encryption_keys=keys, **overrides)


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, db: Database | None = None, setup: Any = None, migrate: bool = False
) -> AsyncIterator[tuple[FastAPI, httpx2.AsyncClient]]:
    """The app with its lifespan running (migrating the schema if asked), and an in-process client."""
    ctx = await AppContext.create(settings, db=db)
    try:
        app = create_app(context=ctx, migrate=migrate)
        if setup is not None:
            setup(app)
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield app, client
    finally:
        await ctx.close()


@pytest.fixture
async def sqlite_app(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx2.AsyncClient]]:
    """The app on a fresh SQLite file (the shell's behaviour does not depend on the backend)."""
    settings = make_settings(tmp_path)
    db = Database(settings.effective_database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with running(settings, db=db) as pair:
        yield pair


def assert_envelope(body: dict[str, Any], code: str) -> dict[str, Any]:
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["request_id"], str)
    assert error["request_id"]
    return error


# --- probes -----------------------------------------------------------------------------------------


async def test_healthz_and_readyz(sqlite_app: tuple[FastAPI, httpx2.AsyncClient]) -> None:
    _app, client = sqlite_app
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["cache"]["ok"] is True


async def test_bare_address_opens_the_operator_console(
    sqlite_app: tuple[FastAPI, httpx2.AsyncClient],
) -> None:
    _app, client = sqlite_app
    home = await client.get("/")
    assert home.status_code == 307
    assert home.headers["location"] == "/admin/"


async def test_readyz_names_the_unreachable_database(tmp_path: Path) -> None:
    # A PostgreSQL URL on a port nothing listens on: the probe must fail fast and say "database".
    settings = make_settings(tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere")
    async with running(settings) as (_app, client):
        health = await client.get("/healthz")
        assert health.status_code == 200  # liveness does no I/O
        ready = await client.get("/readyz")
        scrape = await client.get("/metrics")
    assert scrape.status_code == 200  # process metrics survive a database outage
    assert _sample(scrape.text, "vpsbridge_queue_metrics_up") == 0
    assert ready.status_code == 503
    error = assert_envelope(ready.json(), "not_ready")
    assert "database" in error["message"]
    checks = error["details"]["checks"]
    assert checks["database"]["ok"] is False
    assert checks["cache"]["ok"] is True
    assert "nowhere" not in ready.text  # the DSN stays in the server log


# --- metrics ----------------------------------------------------------------------------------------


async def _add_jobs(db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    async with db.session() as session:
        session.add_all(
            [
                Job(kind="demo", status="queued", run_at=now - dt.timedelta(seconds=120)),
                Job(kind="demo", status="queued", run_at=now - dt.timedelta(seconds=5)),
                Job(kind="demo", status="queued", run_at=now + dt.timedelta(hours=1)),
                Job(kind="demo", status="failed", run_at=now),
            ]
        )


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.split(" ", 1)[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics output")


async def test_metrics_content_on_both_backends(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, db_url)
    db = Database(db_url)
    await _add_jobs(db)
    async with running(settings, db=db) as (_app, client):
        await client.get("/healthz")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert _sample(text, 'vpsbridge_jobs{status="queued"}') == 3
    assert _sample(text, 'vpsbridge_jobs{status="failed"}') == 1
    assert _sample(text, 'vpsbridge_jobs{status="running"}') == 0
    assert _sample(text, "vpsbridge_queue_metrics_up") == 1
    assert _sample(text, "vpsbridge_job_backlog") == 2  # the job due in an hour is not backlog
    age = _sample(text, "vpsbridge_job_oldest_queued_age_seconds")
    assert 115 <= age < 600
    assert 'vpsbridge_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "process_" in text or "python_info" in text  # the default registry is included


async def test_metrics_token_is_enforced(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, metrics_token="scrape-me-please")
    async with running(settings, migrate=True) as (_app, client):
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-pleasX"})
        basic = await client.get("/metrics", headers={"Authorization": "Basic scrape-me-please"})
        right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert_envelope(refused.json(), "unauthorized")
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "vpsbridge_jobs" not in refused.text
    assert right.status_code == 200
    assert "vpsbridge_jobs" in right.text


# --- docs -------------------------------------------------------------------------------------------


def _local_only(html: str) -> None:
    for external in ("http://", "https://", "//cdn"):
        assert external not in html, html


async def test_docs_are_served_from_local_files(
    sqlite_app: tuple[FastAPI, httpx2.AsyncClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _app, client = sqlite_app
    page = await client.get("/docs")
    if page.status_code == 503:
        # No asset build in this tree: prove the page logic against stand-in files instead.
        fake = tmp_path / "swagger-ui"
        fake.mkdir()
        for name in docs.SWAGGER_FILES:
            (fake / name).write_text("/* stand-in */")
        monkeypatch.setattr(docs, "SWAGGER_DIR", fake)
        page = await client.get("/docs")
    assert page.status_code == 200
    html = page.text
    _local_only(html)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "/static/vendor/swagger-ui/swagger-ui.css" in html
    csp = page.headers["content-security-policy"]
    nonce = csp.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script nonce="{nonce}">' in html
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "cdn" not in csp
    assert "http" not in csp
    favicon = await client.get("/static/favicon.svg")
    assert favicon.status_code == 200
    schema = await client.get("/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/platforms" in schema.json()["paths"]
    components = schema.json()["components"]
    assert components["securitySchemes"]["ApiToken"]["scheme"] == "bearer"
    # Errors are documented as the envelope they really are; credentials are input-only.
    assert "ErrorEnvelope" in components["schemas"]
    assert "HTTPValidationError" not in schema.text
    assert "credentials" in components["schemas"]["PlatformCreate"]["properties"]
    assert "credentials" not in components["schemas"]["PlatformOut"]["properties"]
    # FastAPI's CDN-backed pages are switched off.
    assert (await client.get("/redoc")).status_code == 404


async def test_docs_assets_are_fetchable_when_built(sqlite_app: tuple[FastAPI, httpx2.AsyncClient]) -> None:
    from conftest import require

    require(
        not docs.missing_assets(), "front-end assets are not built (cd frontend && npm ci && npm run build)"
    )
    _app, client = sqlite_app
    for name in docs.SWAGGER_FILES:
        asset = await client.get(f"/static/vendor/swagger-ui/{name}")
        assert asset.status_code == 200
        assert len(asset.content) > 1000


async def test_docs_without_built_assets_say_how_to_build_them(
    sqlite_app: tuple[FastAPI, httpx2.AsyncClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docs, "SWAGGER_DIR", tmp_path / "nothing-here")
    _app, client = sqlite_app
    page = await client.get("/docs")
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/plain")
    assert "npm run build" in page.text
    assert "swagger-ui-bundle.js" in page.text
    _local_only(page.text)


# --- errors, request ids, headers -------------------------------------------------------------------


def _add_failing_route(app: FastAPI) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2-internal")


async def test_unexpected_exception_is_a_plain_500_logged_with_traceback(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    try:
        async with running(settings, setup=_add_failing_route, migrate=True) as (_app, client):
            response = await client.get("/boom", headers={"X-Request-ID": "trace-500"})
    finally:
        reset_logging()
    assert response.status_code == 500
    error = assert_envelope(response.json(), "internal_error")
    assert error["request_id"] == "trace-500"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert response.headers["x-request-id"] == "trace-500"
    assert response.headers["x-content-type-options"] == "nosniff"
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    crash = [line for line in lines if line.get("event") == "unhandled_error"]
    assert crash
    assert crash[0]["request_id"] == "trace-500"
    assert "RuntimeError" in crash[0]["exception"]
    access = [line for line in lines if line.get("event") == "request" and line.get("path") == "/boom"]
    assert access
    assert access[0]["status"] == 500
    assert access[0]["request_id"] == "trace-500"


async def test_http_errors_share_the_envelope(sqlite_app: tuple[FastAPI, httpx2.AsyncClient]) -> None:
    _app, client = sqlite_app
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404
    assert_envelope(missing.json(), "not_found")
    wrong_method = await client.delete("/healthz")
    assert wrong_method.status_code == 405
    assert_envelope(wrong_method.json(), "method_not_allowed")


async def test_request_id_round_trip_and_security_headers(
    sqlite_app: tuple[FastAPI, httpx2.AsyncClient],
) -> None:
    _app, client = sqlite_app
    kept = await client.get("/healthz", headers={"X-Request-ID": "abc-123.lb:7"})
    assert kept.headers["x-request-id"] == "abc-123.lb:7"
    hostile = await client.get("/healthz", headers={"X-Request-ID": "evil id\twith spaces" + "x" * 200})
    generated = hostile.headers["x-request-id"]
    assert generated != ""
    assert " " not in generated
    assert len(generated) <= 128
    fresh = await client.get("/healthz")
    assert fresh.headers["x-request-id"] != generated  # a new id per request
    for response in (kept, fresh):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
    error = await client.get("/nope", headers={"X-Request-ID": "rid-404"})
    assert error.json()["error"]["request_id"] == "rid-404"


# --- lifespan: own context, migrations, embedded worker ---------------------------------------------


async def test_lifespan_migrates_and_runs_the_embedded_worker(tmp_path: Path) -> None:
    from vpsbridge.jobs import queue
    from vpsbridge.workflows.base import Done, Step, StepContext, Workflow, register_workflow

    async def greet(step: StepContext) -> Done:
        await step.log(f"hello {step.payload['who']}")
        return Done()

    register_workflow(Workflow(name="web-shell-greet", steps=(Step("greet", greet),)))
    settings = make_settings(tmp_path, worker_poll_seconds=0.05, time_scale=0.01)
    app = create_app(settings, with_worker=True)  # builds, migrates and later closes its own context
    async with app.router.lifespan_context(app):
        ctx: AppContext = app.state.ctx
        job_id = await queue.enqueue(ctx, "web-shell-greet", {"who": "operator"})
        for _ in range(200):
            job = await queue.get_job(ctx, job_id)
            assert job is not None
            if job.status == "succeeded":
                break
            await asyncio.sleep(0.05)
        assert job.status == "succeeded", (job.status, job.last_error)
        lines = await queue.job_log(ctx, job_id)
        assert any("hello operator" in line.message for line in lines)
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/readyz")).status_code == 200


async def test_readyz_names_the_unreachable_cache(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, redis_url="redis://127.0.0.1:9/0")
    db = Database(settings.effective_database_url)
    async with running(settings, db=db) as (_app, client):
        ready = await client.get("/readyz")
    assert ready.status_code == 503, ready.text
    error = assert_envelope(ready.json(), "not_ready")
    assert error["message"] == "Not ready: cache unavailable"
    assert error["details"]["checks"]["database"]["ok"] is True
    assert error["details"]["checks"]["cache"]["ok"] is False
