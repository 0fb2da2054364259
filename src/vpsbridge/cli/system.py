"""System commands: the root ``--config`` option, ``serve``, ``migrate``, ``demo`` and ``version``.

Settings are loaded inside each command, not in the root callback, so ``--help`` works even when the
configuration is broken, and a :class:`~vpsbridge.config.ConfigError` raised by a command travels up
to ``cli.main.main()`` untouched (message on stderr, exit code 2, no traceback).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from vpsbridge import __version__
from vpsbridge.cli._runtime import console, settings_for


def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML configuration file (keys are the setting names). Also VPSBRIDGE_CONFIG.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """VPS hosting automation: provisioning, durable deploys, IP pools, live stock and DNS."""
    ctx.obj = {"config": config}


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (default: setting host).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port (default: setting port).", min=1, max=65535)
    ] = None,
    with_worker: Annotated[
        bool, typer.Option("--with-worker", help="Also run the job worker in this process (all-in-one).")
    ] = False,
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="Do not upgrade the database schema on start.")
    ] = False,
) -> None:
    """Run the web process: bridge API, /api/v1, portal, admin, /healthz, /readyz, /metrics."""
    settings = settings_for(ctx, host=host, port=port)  # first: a bad config must not need the app

    import uvicorn

    from vpsbridge.logs import configure_logging
    from vpsbridge.web.app import create_app

    configure_logging(settings)
    app = create_app(settings, with_worker=with_worker, migrate=not no_migrate)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=int(max(1.0, settings.scaled(30.0))),
    )


def migrate(ctx: typer.Context) -> None:
    """Upgrade the database schema to the newest revision and print it."""
    settings = settings_for(ctx)
    from vpsbridge.store import migrate as store_migrate

    async def run() -> str | None:
        await store_migrate.upgrade(settings.effective_database_url)
        return await store_migrate.current_revision(settings.effective_database_url)

    revision = asyncio.run(run())
    console.print(f"database at revision {revision or '(none)'} ({settings.mode} mode)")


def demo(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option(help="Port on 127.0.0.1; a free one is used when it is taken.", min=0, max=65535)
    ] = 8080,
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir", help="Where the demo keeps its SQLite database and keys.", file_okay=False
        ),
    ] = Path("vpsbridge-data/demo"),
    reset: Annotated[bool, typer.Option("--reset", help="Delete the demo data directory first.")] = False,
) -> None:
    """Run web + worker on loopback with sample data and simulators; prints URLs and a login."""
    settings_for(ctx)  # report a broken configuration before creating any demo file
    from vpsbridge.cli.demo import run_demo

    run_demo(ctx, port=port, data_dir=data_dir, reset=reset)


def version() -> None:
    """Print the vpsbridge version."""
    console.print(f"vpsbridge {__version__}")


def register(app: typer.Typer) -> None:
    app.callback()(root)
    app.command()(serve)
    app.command()(migrate)
    app.command()(demo)
    app.command()(version)
