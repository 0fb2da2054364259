"""FastAPI dependencies shared by every router.

Routers receive the process's :class:`AppContext` through :data:`Ctx` instead of importing a global,
so a test can build an app around its own context and throw-away database.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vpsbridge.services.context import AppContext


def get_ctx(request: Request) -> AppContext:
    """The application context stored on ``app.state.ctx`` by the lifespan."""
    ctx: AppContext | None = getattr(request.app.state, "ctx", None)
    if ctx is None:  # only possible when a request arrives outside the lifespan
        raise RuntimeError("application context is not initialised (lifespan did not run)")
    return ctx


def client_ip(request: Request) -> str | None:
    """The peer address as seen by the server (a proxy's address unless uvicorn trusts its headers)."""
    return request.client.host if request.client else None


Ctx = Annotated[AppContext, Depends(get_ctx)]
