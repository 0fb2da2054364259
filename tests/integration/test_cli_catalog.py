"""The catalog commands end to end through Typer's runner, on the test database."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vpsbridge.cli import catalog
from vpsbridge.store.secrets import KEY_FILE_NAME, generate_key, read_key_file

SECRET = "vf-api-token-0c0ffee"


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("VPSBRIDGE_DATABASE_URL", db_url)
    monkeypatch.setenv("VPSBRIDGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VPSBRIDGE_ENCRYPTION_KEYS", json.dumps([generate_key()]))
    monkeypatch.delenv("VPSBRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("VPSBRIDGE_REDIS_URL", raising=False)
    return CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    catalog.register(app)
    return app


def run(runner: CliRunner, *args: str, input: str | None = None, code: int = 0) -> str:
    result = runner.invoke(_app(), list(args), input=input)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result.stdout


def test_platform_product_pool_commands(cli: CliRunner) -> None:
    added = run(cli, "platform", "add", "vf-main", "--type", "dummy", "--url", "dummy://vf-main",
                "--token", "-", "--setting", "hypervisor_group=2", input=SECRET + "\n")  # fmt: skip
    assert "vf-main" in added
    assert SECRET not in added

    platforms = json.loads(run(cli, "platform", "list", "--json"))
    assert [(p["name"], p["has_credentials"], p["settings"]) for p in platforms] == [
        ("vf-main", True, {"hypervisor_group": 2})
    ]
    assert "credentials" not in platforms[0]
    table = run(cli, "platform", "list")
    assert "vf-main" in table
    assert SECRET not in table
    shown = json.loads(run(cli, "platform", "show", "vf-main", "--json"))
    assert shown["url"] == "dummy://vf-main"

    product = json.loads(
        run(cli, "product", "add", "VPS S", "--platform", "vf-main", "--plan", "package_id=3",
            "--stock-control", "--stock-buffer", "20", "--billing-id", "11", "--json")
    )  # fmt: skip
    assert product["plan"] == {"package_id": 3}
    assert product["stock_buffer_pct"] == 20
    assert [p["billing_product_id"] for p in json.loads(run(cli, "product", "list", "--json"))] == ["11"]
    assert "VPS S" in run(cli, "product", "show", str(product["id"]))

    pool = json.loads(
        run(cli, "pool", "add", "fra-v4", "--network", "192.0.2.0/28", "--gateway", "192.0.2.1",
            "--platform", "vf-main", "--dns-server", "9.9.9.9", "--vlan", "12", "--json")
    )  # fmt: skip
    assert pool["size"] == 13
    assert pool["dns_servers"] == ["9.9.9.9"]
    assert "fra-v4" in run(cli, "pool", "list")
    assert json.loads(run(cli, "pool", "show", "fra-v4", "--json"))["vlan"] == 12

    report = json.loads(run(cli, "platform", "test", "vf-main", "--json"))
    assert report["ok"] is True
    assert {c["name"] for c in report["checks"]} >= {"url", "authentication"}
    run(cli, "platform", "add", "limited", "--type", "dummy", "--url", "dummy://limited", "--token", "t",
        "--credential", "scopes=-", input="x\n")  # fmt: skip
    failing = cli.invoke(_app(), ["platform", "test", "limited"])
    assert failing.exit_code == 1
    assert "servers:write" in failing.stdout
    run(cli, "platform", "remove", "limited", "--yes")

    still_used = cli.invoke(_app(), ["platform", "remove", "vf-main", "--yes"])
    assert still_used.exit_code == 1
    assert "still used by 1 product, 1 IP pool" in still_used.stderr
    run(cli, "pool", "remove", "fra-v4", "--yes")
    run(cli, "product", "remove", "VPS S", "--yes")
    run(cli, "platform", "remove", "vf-main", "--yes")
    assert json.loads(run(cli, "platform", "list", "--json")) == []


def test_errors_are_messages_with_exit_code_1(cli: CliRunner) -> None:
    bad = cli.invoke(_app(), ["pool", "add", "p", "--network", "192.0.2.7/24"])
    assert bad.exit_code == 1
    assert "host bits set; did you mean 192.0.2.0/24" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout
    missing = cli.invoke(_app(), ["platform", "show", "nope"])
    assert missing.exit_code == 1
    assert "no platform with id or name 'nope'" in missing.stderr
    unknown = cli.invoke(_app(), ["platform", "add", "x", "--type", "vmware", "--url", "https://x"])
    assert unknown.exit_code == 1
    assert "known types" in unknown.stderr
    pair = cli.invoke(_app(), ["dns", "add", "x", "--type", "powerdns", "--credential", "novalue"])
    assert pair.exit_code == 1
    assert "expected key=value" in pair.stderr


def test_dns_commands_keep_credentials_secret(cli: CliRunner) -> None:
    out = run(cli, "dns", "add", "pdns", "--type", "powerdns", "--url", "http://127.0.0.1:8081",
              "--credential", "api_key=-", input="pdns-secret-77\n")  # fmt: skip
    assert "pdns-secret-77" not in out
    listed = json.loads(run(cli, "dns", "list", "--json"))
    assert listed[0]["has_credentials"] is True
    assert "pdns-secret-77" not in json.dumps(listed)
    run(cli, "dns", "remove", "pdns", "--yes")
    assert json.loads(run(cli, "dns", "list", "--json")) == []


def test_token_and_admin_commands(cli: CliRunner) -> None:
    created = json.loads(
        run(cli, "token", "create", "ci", "--scope", "write", "--expires-days", "30", "--json")
    )
    assert created["token"].startswith(f"vpsb_{created['prefix']}_")
    plain = run(cli, "token", "create", "other")
    assert "will not be shown again" in plain
    listed = json.loads(run(cli, "token", "list", "--json"))
    assert [(t["name"], t["scope"], t["active"]) for t in listed] == [
        ("ci", "write", True),
        ("other", "read", True),
    ]
    assert all("token" not in t for t in listed)
    run(cli, "token", "revoke", created["prefix"])
    assert json.loads(run(cli, "token", "list", "--json"))[0]["active"] is False
    bad_scope = cli.invoke(_app(), ["token", "create", "x", "--scope", "root"])
    assert bad_scope.exit_code == 1

    out = run(
        cli, "admin", "create-user", "alice", input="a long enough passphrase\na long enough passphrase\n"
    )
    assert "alice" in out
    assert "passphrase" not in out.replace("Password", "")
    short = cli.invoke(_app(), ["admin", "create-user", "bob", "--password", "short"])
    assert short.exit_code == 1
    assert "at least 12 characters" in short.stderr


def test_keys_generate_and_rotate(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = run(cli, "keys", "generate").strip()
    assert len(key) == 44
    old = json.loads(os.environ["VPSBRIDGE_ENCRYPTION_KEYS"])
    run(cli, "dns", "add", "cf", "--type", "cloudflare", "--token", "cf-token-1")
    monkeypatch.setenv("VPSBRIDGE_ENCRYPTION_KEYS", json.dumps([key, *old]))
    out = run(cli, "keys", "rotate")
    assert "dns_providers.credentials_enc: 1 re-encrypted" in out
    assert "1 secret(s) re-encrypted" in out
    monkeypatch.setenv("VPSBRIDGE_ENCRYPTION_KEYS", json.dumps([key]))
    assert json.loads(run(cli, "dns", "list", "--json"))[0]["has_credentials"] is True
    assert "0 secret(s) re-encrypted" in run(cli, "keys", "rotate")

    refused = cli.invoke(_app(), ["keys", "generate", "--add"])
    assert refused.exit_code == 1
    monkeypatch.delenv("VPSBRIDGE_ENCRYPTION_KEYS")
    if "sqlite" in os.environ["VPSBRIDGE_DATABASE_URL"]:
        file_keys = [generate_key()]
        (tmp_path / KEY_FILE_NAME).write_text(file_keys[0] + "\n")
        run(cli, "keys", "generate", "--add")
        keys_now = read_key_file(tmp_path / KEY_FILE_NAME)
        assert len(keys_now) == 2
        assert keys_now[1] == file_keys[0]


def test_unmigrated_database_gives_a_hint_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPSBRIDGE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("VPSBRIDGE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("VPSBRIDGE_ENCRYPTION_KEYS", raising=False)
    result = CliRunner().invoke(_app(), ["platform", "list"])
    assert result.exit_code == 1
    assert "run `vpsbridge migrate`" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
