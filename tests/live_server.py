"""Serving an ASGI app on a loopback port inside a test, and launching Debian's Chromium.

Browser tests and websocket tests need a real socket (Playwright and websocket clients cannot use an
in-process transport). Every such test uses these helpers instead of its own copy, so a change to
how servers start, or to the flags that keep Chromium quiet and offline, happens once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn

#: Headless, offline, no first-run or sync chatter; ``--no-sandbox`` because CI runs as root.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHROMIUM = "/usr/bin/chromium"

#: A page script counting the drawn pixels of the console popup's noVNC canvas: (pixels that are not
#: black, distinct colours). A console that shows nothing is black; a real screen has both.
CANVAS_PIXELS = """() => {
  const canvas = document.querySelector('#screen canvas');
  if (!canvas || !canvas.width) { return [0, 0]; }
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0; const colours = new Set();
  for (let i = 0; i < data.length; i += 4 * 7) {
    if (data[i] + data[i + 1] + data[i + 2] > 30) lit++;
    colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  }
  return [lit, colours.size];
}"""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def served(
    app: Any, *, lifespan: Literal["on", "off", "auto"] = "on", startup_seconds: float = 10.0
) -> AsyncIterator[int]:
    """Run ``app`` with uvicorn on a free loopback port for the block; yields the port.

    Browsers treat ``http://localhost`` as a secure context, so pages served here may set the
    ``Secure`` ``__Host-`` cookies the portal and console use.
    """
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan=lifespan)
    )
    task = asyncio.create_task(server.serve())
    try:
        deadline = asyncio.get_running_loop().time() + startup_seconds
        while not server.started:
            if task.done() or asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"the test server on port {port} did not start")
            await asyncio.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        await task


@dataclass
class ChromiumPage:
    """A signed-out Chromium page on a served app; ``problems`` collects page errors and console
    errors (CSP violations among them) for :func:`chromium_page` to check at the end."""

    origin: str
    browser: Any
    context: Any
    page: Any
    problems: list[str] = field(default_factory=list)


def page_failures(problems: list[str]) -> list[str]:
    """The collected messages that fail a page test: CSP violations and uncaught page errors."""
    return [p for p in problems if "Content Security Policy" in p or "page error" in p]


@contextlib.asynccontextmanager
async def chromium_page(app: Any, *, width: int = 1280, height: int = 900) -> AsyncIterator[ChromiumPage]:
    """Serve ``app``, open Debian's Chromium on ``http://localhost:<port>`` (a secure context, so the
    ``__Host-`` cookies work) and yield one page; afterwards assert no CSP violation or page error."""
    from playwright.async_api import async_playwright

    async with served(app) as port, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = await browser.new_context(viewport={"width": width, "height": height})
            page = await context.new_page()
            session = ChromiumPage(f"http://localhost:{port}", browser, context, page)
            page.on("pageerror", lambda e: session.problems.append(f"page error: {e}"))
            page.on("console", lambda m: session.problems.append(m.text) if m.type == "error" else None)
            yield session
        finally:
            await browser.close()
    assert page_failures(session.problems) == []
