"""``vpsbridge service ...`` end to end through Typer's runner on the test database (both backends)."""

from __future__ import annotations

import asyncio
import json

import pytest
from provisioning_support import World, world
from typer.testing import CliRunner

from vpsbridge.cli.main import app

__all__ = ["world"]


@pytest.fixture
def runner(world: World, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    settings = world.app.settings
    monkeypatch.setenv("VPSBRIDGE_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("VPSBRIDGE_DATA_DIR", str(settings.data_dir))
    keys = [k.get_secret_value() for k in settings.encryption_keys]
    monkeypatch.setenv("VPSBRIDGE_ENCRYPTION_KEYS", json.dumps(keys))
    monkeypatch.delenv("VPSBRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("VPSBRIDGE_REDIS_URL", raising=False)
    return CliRunner()


async def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    # Each command runs its own event loop (asyncio.run), so it runs in a thread beside the test's loop.
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result.stdout if code == 0 else result.stderr


async def test_service_commands(world: World, runner: CliRunner) -> None:
    created = json.loads(
        await run(
            runner,
            "service",
            "create",
            "--product",
            world.product,
            "--client",
            "77",
            "--billing-id",
            "5001",
            "--os",
            "debian-12",
            "--hostname",
            "cli.example.net",
            "--option",
            "RAM=2",
            "--json",
        )
    )
    assert created["status"] == "provisioning"
    assert created["billing_service_id"] == "5001"
    await world.drain()
    shown = await run(runner, "service", "show", "billing:5001")
    assert "active" in shown
    assert "cli.example.net" in shown
    listed = json.loads(await run(runner, "service", "list", "--json", "--client", "77"))
    assert [s["id"] for s in listed] == [created["id"]]
    login = await run(runner, "service", "credentials", str(created["id"]))
    assert login.startswith("root: ")
    suspended = await run(runner, "service", "suspend", str(created["id"]))
    assert suspended.startswith("suspend: done")
    error = await run(runner, "service", "power", str(created["id"]), "restart", code=1)
    assert "error:" in error
    assert "suspended" in error
    await run(runner, "service", "unsuspend", str(created["id"]))
    await world.drain()
    changed = json.loads(
        await run(runner, "service", "change-package", str(created["id"]), "--option", "RAM=4", "--json")
    )
    assert changed["outcome"] == "accepted"
    await world.drain()
    terminated = await run(runner, "service", "terminate", str(created["id"]), "--delay", "0", "--yes")
    assert terminated.startswith("terminate: queued")
    await world.drain()
    assert (
        json.loads(await run(runner, "service", "show", str(created["id"]), "--json"))["status"]
        == "terminated"
    )


async def test_unknown_option_and_bad_reference_read_well(world: World, runner: CliRunner) -> None:
    error = await run(
        runner,
        "service",
        "create",
        "--product",
        world.product,
        "--client",
        "77",
        "--option",
        "Colour=red",
        code=1,
    )
    assert "unknown product option(s): Colour" in error
    assert "no service" in await run(runner, "service", "show", "billing:404", code=1)
    usage = await run(runner, "service", "resolve", "1", code=1)
    assert "exactly one" in usage
