"""Liveness and readiness probes for load balancers, systemd watchdogs and container orchestrators.

``/healthz`` answers from memory only: if the event loop can run this handler the process is alive,
and a database outage must not get a healthy process restarted in a loop. ``/readyz`` checks what a
request needs (database and cache) with a short timeout each and says which part failed, so a load
balancer stops sending traffic while an operator sees the cause at a glance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vpsbridge import __version__
from vpsbridge.logs import get_logger
from vpsbridge.web.deps import Ctx
from vpsbridge.web.errors import error_body, error_responses

log = get_logger(__name__)

router = APIRouter(tags=["health"])

#: Seconds each readiness check may take before it counts as failed.
CHECK_TIMEOUT = 3.0


@router.get("/healthz", summary="Liveness: the process is up (no I/O)")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


async def _timed(check: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        answer = await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {CHECK_TIMEOUT:g}s"}
    except Exception as exc:
        # The class name tells an operator enough (OperationalError, ConnectionRefusedError ...);
        # the message can carry a DSN, so it goes to the log (redacted) and not to the probe body.
        log.warning("readiness_check_failed", error_type=type(exc).__name__, error=str(exc))
        return {"ok": False, "error": type(exc).__name__}
    if answer is False:  # Cache.ping() reports failure by value, never by raising
        return {"ok": False, "error": "no answer"}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


@router.get(
    "/readyz",
    summary="Readiness: database and cache answer",
    responses=error_responses(503),
)
async def readyz(ctx: Ctx) -> JSONResponse:
    database, cache = await asyncio.gather(_timed(ctx.db.ping), _timed(ctx.cache.ping))
    cache.update(ctx.cache.describe())
    checks = {"database": database, "cache": cache}
    failed = [name for name, result in checks.items() if not result["ok"]]
    if failed:
        body = error_body("not_ready", f"Not ready: {', '.join(failed)} unavailable", {"checks": checks})
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})
