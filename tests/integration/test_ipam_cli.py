"""``vpsbridge ip ...`` end to end through Typer's runner, on the test database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vpsbridge.cli import catalog, ipam
from vpsbridge.store.secrets import generate_key


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("VPSBRIDGE_DATABASE_URL", db_url)
    monkeypatch.setenv("VPSBRIDGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VPSBRIDGE_ENCRYPTION_KEYS", json.dumps([generate_key()]))
    monkeypatch.delenv("VPSBRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("VPSBRIDGE_REDIS_URL", raising=False)
    return CliRunner()


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    app = typer.Typer()
    catalog.register(app)
    ipam.register(app)
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result.stdout + (result.stderr if code else "")


def test_usage_assign_release(cli: CliRunner) -> None:
    run(cli, "pool", "add", "fra-v4", "--network", "192.0.2.0/24", "--gateway", "192.0.2.1")
    run(cli, "pool", "add", "fra-v6", "--network", "2001:db8:100::/48")
    assert "now belongs to a reservation" in run(
        cli, "ip", "assign", "fra-v4", "192.0.2.10", "--note", "router"
    )
    assert "already taken" in run(cli, "ip", "assign", "fra-v4", "192.0.2.10", code=1)
    usage = {u["name"]: u for u in json.loads(run(cli, "ip", "usage", "--json"))}
    assert usage["fra-v4"]["size"] == 253
    assert usage["fra-v4"]["reserved"] == 1
    assert usage["fra-v4"]["free"] == 252
    assert usage["fra-v4"]["reverse_zone"] == "2.0.192.in-addr.arpa."
    assert usage["fra-v6"]["reverse_zone"] == "0.0.1.0.8.b.d.0.1.0.0.2.ip6.arpa."
    table = run(cli, "ip", "usage", "fra-v4")
    assert "2.0.192.in-addr.arpa." in table
    assert "freed" in run(cli, "ip", "release", "fra-v4", "192.0.2.10", "--yes")
    assert json.loads(run(cli, "ip", "usage", "fra-v4", "--json"))[0]["reserved"] == 0
    assert "not taken" in run(cli, "ip", "release", "fra-v4", "192.0.2.10", "--yes", code=1)
