"""An in-process transport to the simulator that behaves like a network for the client.

``httpx2.ASGITransport`` neither enforces timeouts nor turns a dropped connection into a transport
error; this wrapper does both, so injected "timeout" and "reset" faults reach the driver as the
exceptions a real connection would raise.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2


class SimTransport(httpx2.AsyncBaseTransport):
    def __init__(self, app: Any, *, read_timeout: float = 5.0) -> None:
        self._inner = httpx2.ASGITransport(app=app)
        self.read_timeout = read_timeout

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeout = request.extensions.get("timeout", {}).get("read") or self.read_timeout
        try:
            return await asyncio.wait_for(self._inner.handle_async_request(request), timeout)
        except TimeoutError:
            raise httpx2.ReadTimeout("simulated read timeout", request=request) from None
        except ConnectionResetError as exc:
            raise httpx2.ReadError(str(exc), request=request) from None

    async def aclose(self) -> None:
        await self._inner.aclose()
