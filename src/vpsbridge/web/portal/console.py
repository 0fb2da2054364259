"""The console relay: browser websocket <-> the server's VNC (RFB) stream.

The popup's noVNC connects here with a relay ticket that works once, for a few seconds
(:func:`vpsbridge.services.portal.claim_console`). The platform's own console credential never
reaches the browser. Where the stream comes from:

* a ticket of kind ``vnc`` with ``host``/``port`` - a plain TCP connection to that RFB server;
* a console target registered for the platform type in ``ctx.extras["console_targets"]``
  (``{"dummy": ("127.0.0.1", 5955)}``) - how the demo and the browser tests bridge the simulators'
  consoles to a real VNC server (``Xvnc``), so the console shows a real screen.

Other tickets (a platform's own websocket URL) are refused with a readable close reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

from vpsbridge.logs import get_logger
from vpsbridge.services import portal
from vpsbridge.web.deps import get_ctx

log = get_logger(__name__)

EXTRAS_CONSOLE_TARGETS = "console_targets"
CHUNK = 65536


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    parts = urlsplit(origin)
    public = websocket.app.state.settings.public_url
    allowed = {host.lower()}
    if public:
        allowed.add(urlsplit(public).netloc.lower())
    return parts.netloc.lower() in allowed


def target_for(ticket: dict[str, Any], targets: dict[str, tuple[str, int]]) -> tuple[str, int] | None:
    """Where to open the RFB stream for a claimed ticket, or ``None``."""
    platform_type = str(ticket.get("platform_type") or "")
    if platform_type in targets:
        return targets[platform_type]
    upstream = ticket.get("ticket") or {}
    if upstream.get("kind") == "vnc" and upstream.get("host") and upstream.get("port"):
        return str(upstream["host"]), int(upstream["port"])
    return None


async def relay_console(websocket: WebSocket, relay: str) -> None:
    ctx = get_ctx(websocket)  # type: ignore[arg-type]
    if not _same_origin(websocket):
        await websocket.close(code=4403, reason="cross-origin console refused")
        return
    claimed = await portal.claim_console(ctx, relay)
    if claimed is None:
        await websocket.close(code=4401, reason="console ticket expired or already used")
        return
    target = target_for(claimed, ctx.extras.get(EXTRAS_CONSOLE_TARGETS) or {})
    if target is None:
        await websocket.close(code=4502, reason="this console cannot be relayed")
        return
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*target), timeout=5)
    except (OSError, TimeoutError):
        await websocket.close(code=4504, reason="the console is not reachable")
        return
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    await websocket.accept(subprotocol="binary" if "binary" in offered else None)
    log.info("console_opened", service_id=claimed.get("service_id"))

    async def upstream_to_browser() -> None:
        while data := await reader.read(CHUNK):
            await websocket.send_bytes(data)

    async def browser_to_upstream() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            payload = message.get("bytes") or (message.get("text") or "").encode()
            writer.write(payload)
            await writer.drain()

    tasks = [asyncio.ensure_future(upstream_to_browser()), asyncio.ensure_future(browser_to_upstream())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        with contextlib.suppress(Exception):
            await websocket.close()
