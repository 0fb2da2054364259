"""The FastAPI application factory.

``create_app`` builds one app per process (``vpsbridge serve``, ``demo``, tests). Everything with a
life time - the :class:`AppContext` (database, cache, secrets), the schema migration and, in the
all-in-one mode, the embedded job worker - is created in the lifespan, so importing this module has no
side effect and a test can build as many apps as it likes, each around its own database.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from vpsbridge import __version__
from vpsbridge.config import Settings, load_settings
from vpsbridge.logs import get_logger
from vpsbridge.services.context import AppContext
from vpsbridge.web import docs, health, metrics
from vpsbridge.web.admin import router as admin_router
from vpsbridge.web.api import api_router
from vpsbridge.web.bridge import router as bridge_router
from vpsbridge.web.errors import install_error_handlers
from vpsbridge.web.middleware import RequestContextMiddleware
from vpsbridge.web.portal import router as portal_router

if TYPE_CHECKING:
    from vpsbridge.jobs.worker import Worker

log = get_logger(__name__)

API_DESCRIPTION = """\
Operator API of vpsbridge. Authenticate with an API token: `Authorization: Bearer vpsb_...`
(create one with `vpsbridge token create`). Scopes: **read** for GET, **write** for changes,
**admin** for tokens. Every call is recorded in the audit log. Errors share one envelope:
`{"error": {"code", "message", "details", "request_id"}}`.
"""


async def run_migrations(database_url: str) -> None:
    """Bring the schema up to date before the first request can touch it."""
    from vpsbridge.store import migrate

    await migrate.upgrade(database_url)


def default_worker_id() -> str:
    """Names the embedded worker in leases and logs: host, process, and that it runs inside web."""
    return f"{socket.gethostname()}:{os.getpid()}:web-{uuid.uuid4().hex[:6]}"


def create_app(
    settings: Settings | None = None,
    *,
    context: AppContext | None = None,
    with_worker: bool = False,
    migrate: bool | None = None,
) -> FastAPI:
    """Build the web application.

    ``context``: use this context instead of building one (it is then neither migrated by default nor
    closed on shutdown - its owner does that). ``migrate``: upgrade the schema on start; defaults to
    True when the app builds its own context. ``with_worker``: run the job engine's worker inside this
    process (the embedded, all-in-one mode).
    """
    if context is not None:
        settings = context.settings
    elif settings is None:
        settings = load_settings()
    resolved: Settings = settings
    should_migrate = (context is None) if migrate is None else migrate

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if should_migrate:
            db_url = context.db.url if context is not None else resolved.effective_database_url
            await run_migrations(db_url)
        ctx = context if context is not None else await AppContext.create(resolved)
        app.state.ctx = ctx
        worker: Worker | None = None
        try:
            if with_worker:
                worker = await _start_worker(ctx)
            log.info("web_started", mode=resolved.mode, with_worker=with_worker, version=__version__)
            yield
        finally:
            if worker is not None:
                # Graceful: running jobs are handed back at their next step boundary.
                await worker.stop()
            if context is None:
                await ctx.close()

    app = FastAPI(
        title="vpsbridge",
        version=__version__,
        description=API_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = resolved
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(docs.router)
    app.include_router(api_router, prefix="/api/v1")
    app.include_router(portal_router)
    app.include_router(admin_router)
    app.include_router(bridge_router)
    app.mount(docs.STATIC_URL, StaticFiles(directory=docs.STATIC_DIR), name="static")
    app.add_api_route("/", _home, methods=["GET"], include_in_schema=False)
    return app


async def _home() -> RedirectResponse:
    """The bare address opens the operator console (clients arrive through single sign-on links)."""
    return RedirectResponse("/admin/", status_code=307)


async def _start_worker(ctx: AppContext) -> Worker:
    """The job engine's worker as a background task of this event loop (the embedded mode)."""
    from vpsbridge.jobs.worker import Worker

    worker = Worker(ctx, ctx.settings.worker_concurrency, default_worker_id())
    worker.start()
    return worker
