"""/docs in a real Chromium: Swagger UI renders under its strict CSP and loads nothing from elsewhere."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import uvicorn
from cryptography.fernet import Fernet
from playwright.async_api import async_playwright

from conftest import require, require_binary
from vpsbridge.config import load_settings
from vpsbridge.logs import configure_logging, reset_logging
from vpsbridge.web import docs
from vpsbridge.web.app import create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
async def test_swagger_ui_renders_from_this_server_only(tmp_path: Path) -> None:
    chromium = require_binary("chromium")
    require(not docs.missing_assets(), "front-end assets are not built (cd frontend && npm run build)")

    settings = load_settings(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}",
        encryption_keys=[Fernet.generate_key().decode()],
    )
    configure_logging(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started
        origin = f"http://127.0.0.1:{port}"
        requested: list[str] = []
        problems: list[str] = []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = await browser.new_page()
                page.on("request", lambda request: requested.append(request.url))
                page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
                page.on(
                    "console",
                    lambda message: problems.append(message.text) if message.type == "error" else None,
                )
                await page.goto(f"{origin}/docs")
                await page.wait_for_selector(".opblock", timeout=20000)
                operations = await page.locator(".opblock").count()
                title = await page.locator(".title").first.inner_text()
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await serving
        reset_logging()
    assert operations >= 20  # the /api/v1 operations are listed
    assert title.startswith("vpsbridge")
    assert problems == []  # a CSP violation would show up here
    outside = [url for url in requested if not url.startswith(origin) and not url.startswith("data:")]
    assert outside == []
    assert f"{origin}/static/vendor/swagger-ui/swagger-ui-bundle.js" in requested
    assert f"{origin}/openapi.json" in requested
