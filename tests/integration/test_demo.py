"""The demo: its registration hook, idempotent seeding on both databases, and a real start/stop.

The end-to-end test runs the installed ``vpsbridge demo`` in a subprocess exactly as a person would:
it waits for the printed banner, uses the printed URLs and API token, and stops the demo with SIGINT.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from vpsbridge.config import load_settings
from vpsbridge.services import admins, tokens
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
from vpsbridge.store.models import Admin, ApiToken, IpPool, Platform, Product
from vpsbridge.store.secrets import generate_key

SCRIPT = Path(sys.executable).with_name("vpsbridge")


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


# --- end to end ----------------------------------------------------------------------------------------


class _Demo:
    """A ``vpsbridge demo`` subprocess whose stdout is collected by a thread."""

    def __init__(self, tmp_path: Path, data_dir: Path, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VPSBRIDGE_")}
        env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
        self.stderr_path = tmp_path / f"demo-stderr-{time.monotonic_ns()}.log"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [str(SCRIPT), "demo", "--port", "0", "--data-dir", str(data_dir), *extra],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Ctrl-C stops." in line:
                self.ready.set()
        self.ready.set()

    def banner(self, timeout: float = 90) -> str:
        if not self.ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            pytest.fail(f"demo did not start:\n{''.join(self.lines)}\n{self.stderr_path.read_text()}")
        return "".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._stderr.close()
        return code


def _field(banner: str, label: str) -> str:
    match = re.search(rf"{re.escape(label)}\s+(\S+(?: / \S+)?)", banner)
    assert match, f"{label!r} not in demo output:\n{banner}"
    return match.group(1)


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow
def test_demo_starts_serves_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    demo = _Demo(tmp_path, data_dir)
    try:
        banner = demo.banner()
        ready = _field(banner, "Readiness")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/readyz", ready)
        status, _body = _get(ready)
        assert status == 200
        assert _get(_field(banner, "API docs"))[0] == 200
        token = _field(banner, "API token (admin scope)")
        status, body = _get(_field(banner, "Operator API") + "/platforms", token)
        assert status == 200, body
        assert "demo-dummy" in json.dumps(json.loads(body))
        assert _get(_field(banner, "Operator API") + "/platforms")[0] == 401
        login = _field(banner, "Operator login")
    finally:
        code = demo.stop()
    stderr = demo.stderr_path.read_text()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert (data_dir / "vpsbridge.db").is_file()

    again = _Demo(tmp_path, data_dir)
    try:
        assert _field(again.banner(), "Operator login") == login  # seeded data and login survive a restart
    finally:
        assert again.stop() == 0

    reset = _Demo(tmp_path, data_dir, "--reset")
    try:
        assert _field(reset.banner(), "Operator login") != login  # --reset starts from nothing
    finally:
        assert reset.stop() == 0
