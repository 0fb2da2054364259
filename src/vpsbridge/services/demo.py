"""Demo mode: the registration hook every capability uses to add its own demo content.

``vpsbridge demo`` knows nothing about VirtFusion, Proxmox or DNS providers. Each capability declares a
*contribution* as a Python entry point in the ``vpsbridge.demo`` group::

    [project.entry-points."vpsbridge.demo"]
    virtfusion = "vpsbridge.sim.virtfusion.demo:contribution"

The entry point names an object (an instance, a class with a no-argument constructor, or a module)
with ``name: str``, ``order: int`` and ``async def seed(ctx: DemoContext)``, and optionally
``async def start(ctx: DemoContext)``. The demo runs every ``seed`` in ``(order, name)`` order against a
migrated database, then starts the loopback servers the contributions registered, then every
``start``, then the web process with its embedded worker. Seeding must be idempotent: the demo database
is kept between runs, so a contribution upserts by name rather than inserting.

A simulator reaches the demo in one of two ways: ``ctx.serve_asgi(name, app)`` binds a loopback port
*at once* and returns its URL (so ``seed`` can store that URL in a platform row before the server
runs), or ``ctx.mount(path, app)`` mounts the app inside the web process and returns its URL.

A simulated platform also offers the demo's shared pieces: ``await ctx.console_display()`` starts (once)
the headless VNC server whose screen every simulated console shows and stops it when the demo ends;
``ctx.add_sample_service(...)`` registers a service that :mod:`vpsbridge.services.demo_sample`
provisions for the sample client after every ``start`` hook; ``ctx.add_dns_network(...)`` names an
address range the platform hands out itself, whose reverse zone the demo's DNS then serves.

This module also holds the foundation's own contribution (entry point ``foundation``): an operator
account, an API token, a platform on the in-memory ``dummy`` driver, two products and two IP pools; its
``start`` points that platform's consoles at the demo's VNC screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from vpsbridge.services.context import AppContext

if TYPE_CHECKING:
    from vpsbridge.services.demo_sample import SampleService
    from vpsbridge.sim.vncdisplay import VncDisplay

ENTRY_POINT_GROUP = "vpsbridge.demo"
LOOPBACK = "127.0.0.1"
#: What the demo's console screen says, so a screenshot shows at once which system drew it.
CONSOLE_BANNER = "vpsbridge demo console"


@runtime_checkable
class DemoContribution(Protocol):
    """What an entry point in the ``vpsbridge.demo`` group must provide (``start`` is optional)."""

    name: str
    order: int

    async def seed(self, ctx: DemoContext) -> None: ...


@dataclass
class DemoServer:
    """An ASGI app to serve on its own loopback port; the socket is bound when it is registered."""

    name: str
    app: Any
    sock: socket.socket

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"


@dataclass
class DemoMount:
    """An ASGI app to mount inside the web process under ``path``."""

    path: str
    app: Any
    name: str


@dataclass
class DemoContext:
    """What a contribution gets: the application context plus places to register what the demo shows.

    ``web_url`` is the base URL of the demo's web process (its port is already bound when seeding runs).
    """

    app: AppContext
    data_dir: Path
    web_url: str
    #: (label, URL) pairs printed in the demo panel, in registration order.
    links: list[tuple[str, str]] = field(default_factory=list)
    #: (label, value) pairs printed under "Sign in": logins, passwords, tokens.
    logins: list[tuple[str, str]] = field(default_factory=list)
    #: Free-form lines printed below the links.
    lines: list[str] = field(default_factory=list)
    servers: list[DemoServer] = field(default_factory=list)
    mounts: list[DemoMount] = field(default_factory=list)
    #: Services the demo keeps provisioned for its sample client (see :mod:`.demo_sample`).
    samples: list[SampleService] = field(default_factory=list)
    #: Address ranges a simulated platform hands out itself (not from an IP pool); the demo's DNS
    #: serves their reverse zones so a client can set reverse DNS on those addresses too.
    dns_networks: list[str] = field(default_factory=list)
    _console: VncDisplay | None = None
    _console_tried: bool = False
    _cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def add_link(self, label: str, url: str) -> None:
        self.links.append((label, url))

    def add_login(self, label: str, value: str) -> None:
        self.logins.append((label, value))

    def add_line(self, text: str) -> None:
        self.lines.append(text)

    def add_sample_service(self, sample: SampleService) -> None:
        self.samples.append(sample)

    def add_dns_network(self, network: str) -> None:
        if network not in self.dns_networks:
            self.dns_networks.append(network)

    async def console_display(self) -> tuple[str, int] | None:
        """The ``(host, port)`` of the demo's one VNC server, started on first use; ``None`` without Xvnc.

        Every simulator puts the same screen behind its consoles: one Xvnc is enough to show that the
        console path works end to end, and each extra X server would slow the demo's start. When
        TigerVNC is not installed the demo says so once and runs without consoles.
        """
        if self._console_tried:
            return None if self._console is None else (self._console.host, self._console.port)
        self._console_tried = True
        from vpsbridge.sim.vncdisplay import VncDisplay, VncDisplayError, xvnc_binary

        if xvnc_binary() is None:
            self.add_line(
                "Consoles: not available; they need Xvnc (Debian: apt-get install "
                "tigervnc-standalone-server x11-xserver-utils x11-utils)"
            )
            return None
        display = VncDisplay(banner=CONSOLE_BANNER)
        try:
            await display.start()
        except VncDisplayError as exc:
            display.stop()
            self.add_line(f"Consoles: not available; {exc}")
            return None
        self._console = display

        async def stop_display() -> None:
            display.stop()

        self.on_close(stop_display)
        return display.host, display.port

    def serve_asgi(self, name: str, app: Any, *, port: int | None = None) -> str:
        """Bind a loopback port for ``app`` now and return its base URL; the demo serves it later.

        ``port`` is tried first so URLs stay the same between runs; a free port is used when it is
        taken. Binding immediately means the URL is final and no other process can take the port.
        """
        server = DemoServer(name=name, app=app, sock=bind_loopback(port or 0))
        self.servers.append(server)
        return server.url

    def mount(self, path: str, app: Any, *, name: str | None = None) -> str:
        """Mount ``app`` in the web process under ``path`` (e.g. ``/sim/virtfusion``); returns its URL."""
        if not path.startswith("/") or path.endswith("/") or path in ("/api", "/static", "/docs"):
            raise ValueError(f"demo mount path must look like /name and not shadow the app: {path!r}")
        if any(m.path == path for m in self.mounts):
            raise ValueError(f"demo mount path {path!r} is already taken")
        self.mounts.append(DemoMount(path=path, app=app, name=name or path.strip("/")))
        return self.web_url + path

    def on_close(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Run ``cleanup`` when the demo stops (reverse registration order)."""
        self._cleanups.append(cleanup)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` alongside the demo; it is cancelled when the demo stops."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)
        return task

    async def close(self) -> None:
        """Cancel spawned tasks, run cleanups and release the sockets of servers that never started."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        while self._cleanups:
            cleanup = self._cleanups.pop()
            with contextlib.suppress(Exception):
                await cleanup()
        for server in self.servers:
            server.sock.close()


def bind_loopback(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1: ``port`` if free, otherwise any free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError as exc:
        if port == 0 or exc.errno != errno.EADDRINUSE:
            sock.close()
            raise
        sock.bind((LOOPBACK, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


# --- finding and running contributions -------------------------------------------------------------


class DemoContributionError(Exception):
    """An installed demo contribution cannot be loaded or does not have the required shape."""


def _as_contribution(obj: Any, source: str) -> Any:
    if inspect.isclass(obj):
        obj = obj()
    missing = [attr for attr in ("name", "order", "seed") if not hasattr(obj, attr)]
    if missing:
        raise DemoContributionError(f"demo contribution {source} lacks {', '.join(missing)}")
    if not inspect.iscoroutinefunction(obj.seed):
        raise DemoContributionError(f"demo contribution {source}: seed must be an async function")
    start = getattr(obj, "start", None)
    if start is not None and not inspect.iscoroutinefunction(start):
        raise DemoContributionError(f"demo contribution {source}: start must be an async function")
    return obj


def load_contributions() -> list[DemoContribution]:
    """Every installed ``vpsbridge.demo`` entry point, sorted by ``(order, name)``."""
    found: list[Any] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            raise DemoContributionError(
                f"demo contribution {ep.name} ({ep.value}) failed to load: {exc}"
            ) from exc
        found.append(_as_contribution(obj, f"{ep.name} ({ep.value})"))
    return sort_contributions(found)


def sort_contributions(items: Iterable[Any]) -> list[DemoContribution]:
    return sorted(items, key=lambda c: (int(c.order), str(c.name)))


async def seed_all(ctx: DemoContext, contributions: Iterable[DemoContribution] | None = None) -> list[str]:
    """Run every contribution's ``seed`` in order; returns the names that ran."""
    chosen = sort_contributions(contributions) if contributions is not None else load_contributions()
    names: list[str] = []
    for contribution in chosen:
        await contribution.seed(ctx)
        names.append(contribution.name)
    return names


async def start_all(ctx: DemoContext, contributions: Iterable[DemoContribution] | None = None) -> list[str]:
    """Run the optional ``start`` hook of every contribution, in the same order as seeding."""
    chosen = sort_contributions(contributions) if contributions is not None else load_contributions()
    names: list[str] = []
    for contribution in chosen:
        start = getattr(contribution, "start", None)
        if start is not None:
            await start(ctx)
            names.append(contribution.name)
    return names


# --- the foundation's own demo content -------------------------------------------------------------

DEMO_ADMIN = "admin"
DEMO_TOKEN_NAME = "demo"  # noqa: S105 - a label, not a secret
DEMO_PLATFORM = "demo-dummy"
_PASSWORD_FILE = "demo-admin-password"  # noqa: S105 - a file name


def _demo_password(data_dir: Path) -> tuple[str, bool]:
    """The demo admin's password, generated once and kept (mode 0600) in the demo data directory.

    Kept so that a second ``vpsbridge demo`` prints the same working login instead of a password that
    no longer matches the stored hash. Returns ``(password, created_now)``.
    """
    path = data_dir / _PASSWORD_FILE
    if path.is_file():
        stored = path.read_text(encoding="utf-8").strip()
        if stored:
            return stored, False
    password = secrets.token_urlsafe(15)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    return password, True


#: Sample products: (billing product id, name, plan). Documentation-only address ranges below
#: (RFC 5737 / RFC 3849) so demo data can never collide with a real network.
DEMO_PRODUCTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("demo-vps-s", "Demo VPS S", {"cpu_cores": 1, "memory_mb": 1024, "disk_gb": 25, "traffic_gb": 1000}),
    ("demo-vps-m", "Demo VPS M", {"cpu_cores": 2, "memory_mb": 4096, "disk_gb": 80, "traffic_gb": 4000}),
)
DEMO_POOLS: tuple[dict[str, Any], ...] = (
    {
        "name": "demo-ipv4",
        "network": "192.0.2.0/24",
        "range_start": "192.0.2.10",
        "range_end": "192.0.2.250",
        "gateway": "192.0.2.1",
        "dns_servers": ["192.0.2.53"],
    },
    {
        "name": "demo-ipv6",
        "network": "2001:db8:100::/64",
        "gateway": "2001:db8:100::1",
        "dns_servers": ["2001:db8:100::53"],
    },
)


class FoundationDemo:
    """The foundation's demo content: an operator login, an API token and a small catalog.

    Runs first (``order = 0``) so capability contributions can refer to the ``demo-dummy`` platform.
    """

    name = "foundation"
    order = 0

    async def seed(self, ctx: DemoContext) -> None:
        from vpsbridge.services import admins, platforms, pools, products, tokens
        from vpsbridge.services.audit import Actor
        from vpsbridge.services.errors import NotFound

        app = ctx.app
        actor = Actor.system("demo")

        password, _created = _demo_password(ctx.data_dir)
        existing = {a.username for a in await admins.list_admins(app)}
        if DEMO_ADMIN not in existing:
            await admins.create_admin(app, DEMO_ADMIN, password, actor)
        elif await admins.verify_admin_login(app, DEMO_ADMIN, password) is None:
            await admins.set_admin_password(app, DEMO_ADMIN, password, actor)

        # A fresh token each run, shown only in the demo output; the previous demo token is revoked so
        # exactly one demo token works at any time.
        for token in await tokens.list_tokens(app):
            if token.name == DEMO_TOKEN_NAME and token.active:
                await tokens.revoke_token(app, token.id, actor)
        _token, plaintext = await tokens.create_token(app, DEMO_TOKEN_NAME, "admin", actor)

        # Catalog objects are created when missing and otherwise left alone: an operator may have
        # edited them while trying the demo, and re-running must neither duplicate nor undo that.
        try:
            await platforms.get_platform(app, DEMO_PLATFORM)
        except NotFound:
            await platforms.create_platform(
                app,
                {
                    "name": DEMO_PLATFORM,
                    "type": "dummy",
                    "url": "dummy://demo",
                    "credentials": {"token": "demo"},
                    "settings": {"nodes": ["demo-node-1", "demo-node-2"]},
                },
                actor,
            )

        for billing_id, name, plan in DEMO_PRODUCTS:
            if await products.get_product_by_billing_id(app, billing_id) is None:
                await products.create_product(
                    app,
                    {"billing_product_id": billing_id, "name": name, "platform": DEMO_PLATFORM, "plan": plan},
                    actor,
                )

        for pool in DEMO_POOLS:
            try:
                await pools.get_pool(app, pool["name"])
            except NotFound:
                await pools.create_pool(app, {**pool, "platform": DEMO_PLATFORM}, actor)

        ctx.add_login("Operator login", f"{DEMO_ADMIN} / {password}")
        ctx.add_login("API token (admin scope)", plaintext)
        ctx.add_line(f'Try: curl -H "Authorization: Bearer {plaintext}" {ctx.web_url}/api/v1/platforms')

    async def start(self, ctx: DemoContext) -> None:
        """Point the in-memory platform's consoles at the demo's VNC screen (its port changes per run)."""
        from vpsbridge.services import platforms
        from vpsbridge.services.audit import Actor
        from vpsbridge.services.errors import NotFound

        backend = await ctx.console_display()
        if backend is None:
            return
        wanted = f"{backend[0]}:{backend[1]}"
        try:
            platform = await platforms.get_platform(ctx.app, DEMO_PLATFORM)
        except NotFound:  # the operator removed it while trying the demo
            return
        if platform.settings.get("console_vnc") != wanted:
            settings = {**platform.settings, "console_vnc": wanted}
            actor = Actor.system("demo")
            await platforms.update_platform(ctx.app, DEMO_PLATFORM, {"settings": settings}, actor)


#: The object the ``foundation`` entry point names.
foundation = FoundationDemo()
