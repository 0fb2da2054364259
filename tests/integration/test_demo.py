"""The demo: its registration hook, idempotent seeding on both databases, the sample client, and a real
start/stop.

The end-to-end test runs the installed ``vpsbridge demo`` in a subprocess exactly as a person would:
it waits for the printed banner, uses the printed URLs, API token and portal link, watches the sample
client's services become active, restarts the demo on the same data and stops it with SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from demo_support import DemoProcess, api_get, banner_field, browse, wait_samples_active
from provisioning_support import fast_settings
from sqlalchemy import func, select

from conftest import require_binary
from vpsbridge.cli.demo import _Server
from vpsbridge.config import load_settings
from vpsbridge.jobs.worker import Worker
from vpsbridge.services import admins, portal, tokens
from vpsbridge.services.context import AppContext
from vpsbridge.services.demo import (
    DemoContext,
    DemoContributionError,
    FoundationDemo,
    _as_contribution,
    bind_loopback,
    foundation,
    load_contributions,
    seed_all,
    start_all,
)
from vpsbridge.services.demo_sample import (
    PORTAL_LINK_LABEL,
    SAMPLE_CLIENT_ID,
    SampleOutcome,
    provision_samples,
)
from vpsbridge.services.provisioning import list_services
from vpsbridge.sim.vncdisplay import xvnc_binary
from vpsbridge.store.models import Admin, ApiToken, DnsProvider, IpPool, Platform, Product, Server, Service
from vpsbridge.store.secrets import generate_key


async def _context(db_url: str, tmp_path: Path) -> AppContext:
    settings = load_settings(
        database_url=db_url, data_dir=tmp_path / "data", encryption_keys=[generate_key()]
    )
    return await AppContext.create(settings)


async def _counts(ctx: AppContext) -> dict[str, int]:
    async with ctx.db.session() as session:
        counts = {}
        for model in (Admin, Platform, Product, IpPool):
            counts[model.__tablename__] = await session.scalar(select(func.count()).select_from(model)) or 0
        counts["active_tokens"] = (
            await session.scalar(
                select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))
            )
            or 0
        )
        return counts


def _demo(ctx: AppContext, tmp_path: Path) -> DemoContext:
    return DemoContext(app=ctx, data_dir=tmp_path / "demo", web_url="http://127.0.0.1:9")


async def test_foundation_seed_is_idempotent_and_its_login_works(db_url: str, tmp_path: Path) -> None:
    ctx = await _context(db_url, tmp_path)
    try:
        first = _demo(ctx, tmp_path)
        assert await seed_all(first, [foundation]) == ["foundation"]
        counts = await _counts(ctx)
        assert counts == {"admins": 1, "platforms": 1, "products": 2, "ip_pools": 2, "active_tokens": 1}

        second = _demo(ctx, tmp_path)
        await seed_all(second, [foundation])
        assert await _counts(ctx) == counts

        login_1, login_2 = dict(first.logins), dict(second.logins)
        assert login_1["Operator login"] == login_2["Operator login"]  # same password on every run
        username, password = login_2["Operator login"].split(" / ")
        assert await admins.verify_admin_login(ctx, username, password) is not None

        token_1, token_2 = login_1["API token (admin scope)"], login_2["API token (admin scope)"]
        assert token_1 != token_2
        assert await tokens.authenticate_token(ctx, token_1) is None  # the previous run's token is revoked
        principal = await tokens.authenticate_token(ctx, token_2)
        assert principal is not None
        assert principal.allows("admin")
    finally:
        await ctx.close()


async def test_seed_restores_a_changed_admin_password(tmp_path: Path) -> None:
    ctx = await _context(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", tmp_path)
    try:
        from vpsbridge.store.models import Base

        async with ctx.db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        demo = _demo(ctx, tmp_path)
        await seed_all(demo, [foundation])
        password = dict(demo.logins)["Operator login"].split(" / ")[1]
        from vpsbridge.services.audit import Actor

        await admins.set_admin_password(ctx, "admin", "something-else-entirely", Actor.system("test"))
        await seed_all(_demo(ctx, tmp_path), [foundation])
        assert await admins.verify_admin_login(ctx, "admin", password) is not None
        assert (tmp_path / "demo" / "demo-admin-password").stat().st_mode & 0o077 == 0
    finally:
        await ctx.close()


def test_foundation_is_registered_as_an_entry_point() -> None:
    found = load_contributions()
    names = [c.name for c in found]
    assert "foundation" in names
    assert isinstance(found[names.index("foundation")], FoundationDemo)
    orders = [(c.order, c.name) for c in found]
    assert orders == sorted(orders)


class _Recorder:
    def __init__(self, name: str, order: int, calls: list[str], with_start: bool = True) -> None:
        self.name, self.order, self.calls = name, order, calls
        if with_start:
            self.start = self._start

    async def seed(self, ctx: DemoContext) -> None:
        self.calls.append(f"seed:{self.name}")
        ctx.add_link(self.name, f"{ctx.web_url}/{self.name}")

    async def _start(self, ctx: DemoContext) -> None:
        self.calls.append(f"start:{self.name}")


async def test_contributions_run_in_order_and_start_hooks_are_optional(tmp_path: Path) -> None:
    calls: list[str] = []
    items: list[Any] = [
        _Recorder("zeta", 10, calls),
        _Recorder("alpha", 10, calls, with_start=False),
        _Recorder("first", 1, calls),
    ]
    demo = DemoContext(app=None, data_dir=tmp_path, web_url="http://127.0.0.1:9")  # type: ignore[arg-type]
    assert await seed_all(demo, items) == ["first", "alpha", "zeta"]
    assert await start_all(demo, items) == ["first", "zeta"]
    assert calls == ["seed:first", "seed:alpha", "seed:zeta", "start:first", "start:zeta"]
    assert [label for label, _url in demo.links] == ["first", "alpha", "zeta"]


def test_contribution_shape_is_checked() -> None:
    class NoSeed:
        name, order = "x", 1

    class SyncSeed:
        name, order = "y", 1

        def seed(self, ctx: DemoContext) -> None: ...

    with pytest.raises(DemoContributionError, match="lacks seed"):
        _as_contribution(NoSeed, "x")
    with pytest.raises(DemoContributionError, match="async"):
        _as_contribution(SyncSeed(), "y")


async def test_serve_asgi_binds_at_once_and_falls_back_when_the_port_is_taken(tmp_path: Path) -> None:
    taken = bind_loopback(0)
    port = taken.getsockname()[1]
    demo = DemoContext(app=None, data_dir=tmp_path, web_url="http://127.0.0.1:9")  # type: ignore[arg-type]
    try:
        url = demo.serve_asgi("sim", object(), port=port)
        bound = int(url.rsplit(":", 1)[1])
        assert bound != port
        with socket.create_connection(("127.0.0.1", bound), timeout=2):
            pass  # already listening: the URL can be stored before the server runs
        assert demo.mount("/sim/thing", object()) == "http://127.0.0.1:9/sim/thing"
        with pytest.raises(ValueError, match="already taken"):
            demo.mount("/sim/thing", object())
        with pytest.raises(ValueError, match="must look like"):
            demo.mount("/api", object())
    finally:
        await demo.close()
        taken.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", bound), timeout=1)


async def test_console_display_is_shared_and_stopped_with_the_demo(tmp_path: Path) -> None:
    require_binary("Xvnc")
    demo = DemoContext(app=None, data_dir=tmp_path, web_url="http://127.0.0.1:9")  # type: ignore[arg-type]
    try:
        first = await demo.console_display()
        assert first is not None
        assert await demo.console_display() == first  # one screen for every simulator
        display = demo._console
        assert display is not None
        assert display.running
        with socket.create_connection(first, timeout=2) as sock:
            assert sock.recv(4) == b"RFB "
    finally:
        await demo.close()
    with pytest.raises(ConnectionRefusedError):  # the server is gone with the demo
        socket.create_connection(first, timeout=1).close()
    assert not any("Consoles" in line for line in demo.lines)


async def test_without_xvnc_the_demo_says_so_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vpsbridge.sim import vncdisplay

    monkeypatch.setattr(vncdisplay, "xvnc_binary", lambda: None)
    demo = DemoContext(app=None, data_dir=tmp_path, web_url="http://127.0.0.1:9")  # type: ignore[arg-type]
    assert await demo.console_display() is None
    assert await demo.console_display() is None
    assert [line for line in demo.lines if "tigervnc-standalone-server" in line] == demo.lines
    assert len(demo.lines) == 1
    await demo.close()


async def _catalog_counts(ctx: AppContext) -> dict[str, int]:
    async with ctx.db.session() as session:
        return {
            model.__tablename__: await session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Platform, Product, IpPool, DnsProvider, Service, Server)
        }


async def test_every_installed_contribution_seeds_once(db_url: str, tmp_path: Path) -> None:
    """Seeding twice (a restart) leaves the catalog as it was; seeding alone creates no service."""
    ctx = await _context(db_url, tmp_path)
    try:
        first = _demo(ctx, tmp_path)
        await seed_all(first)
        counts = await _catalog_counts(ctx)
        await first.close()
        assert counts == {
            "platforms": 3,  # dummy, VirtFusion, Proxmox
            "products": 6,
            "ip_pools": 3,  # two on the dummy platform, one for Proxmox
            "dns_providers": 1,
            "services": 0,
            "servers": 0,
        }
        second = _demo(ctx, tmp_path)
        await seed_all(second)
        await second.close()
        assert await _catalog_counts(ctx) == counts
        assert [s.platform for s in second.samples] == ["demo-virtfusion", "demo-proxmox"]
    finally:
        await ctx.close()


@contextlib.asynccontextmanager
async def _running(ctx: AppContext, tmp_path: Path) -> AsyncIterator[DemoContext]:
    """Seed every contribution, serve their simulators, run the start hooks; close all on exit."""
    demo = _demo(ctx, tmp_path)
    servers: list[tuple[_Server, asyncio.Task[None]]] = []
    try:
        await seed_all(demo)
        for extra in demo.servers:
            server = _Server(uvicorn.Config(extra.app, log_config=None, lifespan="auto", access_log=False))
            servers.append((server, asyncio.create_task(server.serve(sockets=[extra.sock]))))
        while not all(server.started for server, _ in servers):
            await asyncio.sleep(0.02)
        await start_all(demo)
        yield demo
    finally:
        for server, _task in servers:
            server.should_exit = True
        for _server, task in servers:
            await task
        await demo.close()


async def _settle(ctx: AppContext, outcome: SampleOutcome | None = None) -> None:
    """Run the worker until idle; with a pending outcome, until its delayed creates ran too."""
    worker = Worker(ctx, concurrency=4, periodic=False, wakeup=False)
    await worker.run_until_idle(timeout=60)
    if outcome is not None and outcome.pending is not None:
        await asyncio.wait_for(outcome.pending, 30)
        await Worker(ctx, concurrency=4, periodic=False, wakeup=False).run_until_idle(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sample_client_gets_one_live_service_per_simulator(db_url: str, tmp_path: Path) -> None:
    ctx = await AppContext.create(fast_settings(db_url, tmp_path / "data"))
    try:
        async with _running(ctx, tmp_path) as demo:
            outcome = await provision_samples(demo)
            assert outcome.problems == []
            assert outcome.retired == []
            assert outcome.pending is None
            created = {b: s.id for b, s in outcome.services.items()}
            assert sorted(created) == ["demo-sample-pve", "demo-sample-vf"]
            assert {s.client_id for s in outcome.services.values()} == {SAMPLE_CLIENT_ID}
            assert {s.status for s in outcome.services.values()} == {"provisioning"}  # not waited for

            # The banner's link signs the sample client in, once.
            assert outcome.link is not None
            assert dict(demo.links)[PORTAL_LINK_LABEL] == outcome.link.url
            assert outcome.link.url.startswith(demo.web_url + "/portal/sso?token=")
            signed_in = await portal.consume_portal_token(ctx, outcome.link.token)
            assert signed_in is not None
            assert signed_in.client_id == SAMPLE_CLIENT_ID
            assert await portal.consume_portal_token(ctx, outcome.link.token) is None

            # Both consoles show the one demo screen (when Xvnc is installed).
            from vpsbridge.sim.proxmox.demo import contribution as pve
            from vpsbridge.sim.virtfusion.demo import contribution as vf

            assert vf.state is not None
            assert pve.state is not None
            if xvnc_binary() is not None:
                assert vf.state.console_backend is not None
                assert vf.state.console_backend == pve.state.console_backend
            else:
                assert any("tigervnc-standalone-server" in line for line in demo.lines)

            await _settle(ctx)
            services = await list_services(ctx, client_id=SAMPLE_CLIENT_ID)
            assert {s.status for s in services} == {"active"}, [s.last_error for s in services]
            assert all(s.server and s.server.ipv4 for s in services)

            # A second provisioning while the simulators hold the servers changes nothing.
            again = await provision_samples(demo)
            assert {b: s.id for b, s in again.services.items()} == created
            assert again.retired == []
            counts = await _catalog_counts(ctx)
            assert (counts["services"], counts["servers"]) == (2, 2)

        # A restart: fresh simulators no longer hold the servers. The lost ones are terminated
        # through the lifecycle, then the same service rows are provisioned again.
        async with _running(ctx, tmp_path) as demo:
            outcome = await provision_samples(demo)
            assert sorted(outcome.retired) == sorted(created.values())
            assert outcome.pending is not None
            assert outcome.link is not None  # the terminating service can still be signed in to
            await _settle(ctx, outcome)
            services = await list_services(ctx, client_id=SAMPLE_CLIENT_ID)
            assert sorted(s.id for s in services) == sorted(created.values())
            assert {s.status for s in services} == {"active"}, [s.last_error for s in services]
            counts = await _catalog_counts(ctx)
            assert counts["services"] == 2  # the same rows; the lost servers stay as history
            async with ctx.db.session() as session:
                live = await session.scalar(
                    select(func.count()).select_from(Server).where(Server.external_id.is_not(None))
                )
            assert live == 2  # the lost servers no longer name an upstream id
    finally:
        await ctx.close()


# --- end to end ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_starts_serves_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    demo = DemoProcess(tmp_path, data_dir)
    try:
        banner = demo.banner()
        ready = banner_field(banner, "Readiness")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/readyz", ready)
        status, _body = api_get(ready)
        assert status == 200
        assert api_get(banner_field(banner, "API docs"))[0] == 200
        token = banner_field(banner, "API token (admin scope)")
        status, body = api_get(banner_field(banner, "Operator API") + "/platforms", token)
        assert status == 200, body
        assert "demo-dummy" in json.dumps(json.loads(body))
        assert api_get(banner_field(banner, "Operator API") + "/platforms")[0] == 401
        login = banner_field(banner, "Operator login")

        # The printed link signs the sample client in to the portal; its services become active.
        final_url, page = browse(banner_field(banner, PORTAL_LINK_LABEL))
        assert "/portal/s/" in final_url, page[:500]
        assert "ada-vf.demo.example.net" in page
        first = wait_samples_active(banner_field(banner, "Operator API"), token)
    finally:
        code = demo.stop()
    stderr = demo.stderr_path.read_text()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert (data_dir / "vpsbridge.db").is_file()

    again = DemoProcess(tmp_path, data_dir)
    try:
        banner = again.banner()
        assert banner_field(banner, "Operator login") == login  # seeded data and login survive a restart
        # The fresh simulators lost the servers: the same services are provisioned again.
        token = banner_field(banner, "API token (admin scope)")
        assert wait_samples_active(banner_field(banner, "Operator API"), token) == first
    finally:
        assert again.stop() == 0
    assert "Traceback" not in again.stderr_path.read_text()

    reset = DemoProcess(tmp_path, data_dir, "--reset")
    try:
        assert banner_field(reset.banner(), "Operator login") != login  # --reset starts from nothing
    finally:
        assert reset.stop() == 0
