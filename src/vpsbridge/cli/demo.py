"""``vpsbridge demo``: the whole product in one process on loopback, with sample data.

The command only orchestrates; what the demo *contains* comes from the ``vpsbridge.demo`` entry points
(see :mod:`vpsbridge.services.demo`). Order of events: bind the web port (so every printed URL is
final), migrate the demo's SQLite database, run every contribution's ``seed``, start the loopback
servers they registered, run their ``start`` hooks, provision the sample client's services (the
creates only; their deploy jobs run in the worker after the banner is printed), then serve the web
app with its embedded worker until Ctrl-C or SIGTERM, and shut everything down in reverse.

All uvicorn servers here run with signal capture disabled: the demo installs one SIGINT/SIGTERM handler
on the event loop and stops every server itself, so the process exits with code 0 and no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
import uvicorn
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from vpsbridge.cli._runtime import err_console, settings_for
from vpsbridge.config import Settings
from vpsbridge.services.demo import DemoContext, bind_loopback, load_contributions, seed_all, start_all
from vpsbridge.services.demo_sample import provision_samples

#: Written into a demo data directory so ``--reset`` never deletes a directory it did not create.
MARKER = ".vpsbridge-demo"
_STARTUP_TIMEOUT = 60.0


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the demo (several servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def prepare_data_dir(data_dir: Path, *, reset: bool) -> Path:
    """Create (or, with ``reset``, recreate) the demo data directory; refuse to wipe a foreign one."""
    data_dir = data_dir.expanduser().resolve()
    if reset and data_dir.exists():
        if not (data_dir / MARKER).is_file() and any(data_dir.iterdir()):
            err_console.print(
                f"vpsbridge demo: refusing to reset {data_dir}: it is not empty and was not created by "
                "the demo (no marker file)."
            )
            raise typer.Exit(1)
        shutil.rmtree(data_dir)
    if not data_dir.exists() or not any(data_dir.iterdir()):
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / MARKER).touch()
    return data_dir


def run_demo(typer_ctx: typer.Context, *, port: int, data_dir: Path, reset: bool) -> None:
    directory = prepare_data_dir(data_dir, reset=reset)
    sock = bind_loopback(port)
    actual_port = sock.getsockname()[1]
    web_url = f"http://127.0.0.1:{actual_port}"
    try:
        settings = settings_for(
            typer_ctx,
            data_dir=directory,
            database_url=f"sqlite+aiosqlite:///{directory / 'vpsbridge.db'}",
            redis_url="",
            host="127.0.0.1",
            port=actual_port,
            public_url=web_url,
            secure_cookies=False,
            log_format="console",
        )
        if port and actual_port != port:
            err_console.print(f"port {port} is taken; the demo uses {actual_port} instead")
        code = asyncio.run(_main(settings, sock, directory, web_url))
    finally:
        sock.close()
    if code:
        raise typer.Exit(code)


async def _main(settings: Settings, sock: socket.socket, data_dir: Path, web_url: str) -> int:
    from vpsbridge.logs import configure_logging
    from vpsbridge.services.context import AppContext
    from vpsbridge.store import migrate
    from vpsbridge.web.app import create_app

    configure_logging(settings)
    await migrate.upgrade(settings.effective_database_url)
    ctx = await AppContext.create(settings)
    demo = DemoContext(app=ctx, data_dir=data_dir, web_url=web_url)
    stop = asyncio.Event()
    servers: list[tuple[_Server, asyncio.Task[None]]] = []

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait for in-flight requests
            for server, _task in servers:
                server.force_exit = True
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        contributions = load_contributions()
        await seed_all(demo, contributions)

        for extra in demo.servers:
            server = _Server(uvicorn.Config(extra.app, log_config=None, lifespan="auto", access_log=False))
            servers.append((server, asyncio.create_task(server.serve(sockets=[extra.sock]))))
        for server, task in servers:
            if not await _started(server, task):
                err_console.print("vpsbridge demo: a demo server failed to start; see the log above")
                return 1
        await start_all(demo, contributions)
        await provision_samples(demo)

        app = create_app(context=ctx, with_worker=True, migrate=False)
        for mount in demo.mounts:
            app.mount(mount.path, mount.app, name=mount.name)
        web = _Server(
            uvicorn.Config(app, log_config=None, lifespan="on", proxy_headers=False, server_header=False)
        )
        web_task = asyncio.create_task(web.serve(sockets=[sock]))
        servers.insert(0, (web, web_task))
        if not await _started(web, web_task):
            err_console.print("vpsbridge demo: the web process failed to start; see the log above")
            return 1

        print_banner(demo, settings)
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({stopper, web_task}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        return 0 if stop.is_set() else 1
    finally:
        for server, _task in servers:
            server.should_exit = True
        for _server, task in servers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await demo.close()
        await ctx.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if stop.is_set():
            err_console.print("demo stopped")


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> bool:
    """Wait until ``server`` accepts connections; False when it exited first (e.g. a failed lifespan)."""
    deadline = asyncio.get_running_loop().time() + _STARTUP_TIMEOUT
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def demo_links(demo: DemoContext) -> list[tuple[str, str]]:
    """The URLs the banner shows: the operator console, the API and its docs, then what seeds added."""
    base = demo.web_url
    links = [
        ("Operator console", base + "/admin/"),
        ("API docs", base + "/docs"),
        ("Operator API", base + "/api/v1"),
        ("Readiness", base + "/readyz"),
    ]
    links.extend(demo.links)
    return links


def print_banner(demo: DemoContext, settings: Settings) -> None:
    """The demo's one screen of output; stdout is flushed so a supervising process sees it at once."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(no_wrap=True)
    for label, url in demo_links(demo):
        table.add_row(label, url)
    parts: list[Any] = [table]
    if demo.logins:
        login = Table.grid(padding=(0, 2))
        login.add_column(style="bold", no_wrap=True)
        login.add_column(no_wrap=True)
        for label, value in demo.logins:
            login.add_row(label, value)
        parts += ["", "[bold]Sign in[/bold]", login]
    parts += [
        "",
        *demo.lines,
        f"Data: {settings.data_dir} (SQLite); worker runs in this process.",
        "Ctrl-C stops.",
    ]
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    out.print(Panel(Group(*parts), title=f"vpsbridge demo - {demo.web_url}", expand=False))
    sys.stdout.flush()
