"""The system commands through the real ``vpsbridge`` console script and through Click's help walk.

Configuration errors are tested in a subprocess on purpose: what matters to an operator is what the
installed command prints and its exit code, including that no traceback appears.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from vpsbridge import __version__
from vpsbridge.cli.main import app

SCRIPT = Path(sys.executable).with_name("vpsbridge")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSBRIDGE_")}
    env.update({"XDG_DATA_HOME": str(tmp_path / "xdg"), "COLUMNS": "120", **extra})
    return env


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"console script missing: {SCRIPT}"
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["demo", "--port", "0"]])
def test_invalid_env_value_exits_2_naming_the_setting(tmp_path: Path, command: list[str]) -> None:
    result = _run(tmp_path, *command, VPSBRIDGE_WORKER_CONCURRENCY="abc")
    assert result.returncode == 2, result.stderr
    assert "VPSBRIDGE_WORKER_CONCURRENCY" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_invalid_port_env_exits_2(tmp_path: Path) -> None:
    result = _run(tmp_path, "migrate", VPSBRIDGE_PORT="abc")
    assert result.returncode == 2
    assert "VPSBRIDGE_PORT" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ('log_level = "loud"\n', "VPSBRIDGE_LOG_LEVEL"),
        ("no_such_setting = 1\n", "VPSBRIDGE_NO_SUCH_SETTING: unknown setting"),
        ("port = [unclosed\n", "invalid configuration"),
    ],
)
def test_bad_config_file_exits_2(tmp_path: Path, content: str, named: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content)
    result = _run(tmp_path, "--config", str(config), "migrate")
    assert result.returncode == 2, result.stdout + result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = _run(tmp_path, "--config", str(tmp_path / "nope.toml"), "migrate")
    assert result.returncode == 2
    assert "nope.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_version(tmp_path: Path) -> None:
    result = _run(tmp_path, "version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"vpsbridge {__version__}"


def test_migrate_creates_the_schema_and_prints_the_revision(tmp_path: Path) -> None:
    from vpsbridge.store.migrate import head_revision

    data = tmp_path / "data"
    first = _run(tmp_path, "migrate", VPSBRIDGE_DATA_DIR=str(data))
    assert first.returncode == 0, first.stderr
    head = head_revision()
    assert head
    assert head in first.stdout
    assert (data / "vpsbridge.db").is_file()
    again = _run(tmp_path, "migrate", VPSBRIDGE_DATA_DIR=str(data))
    assert again.returncode == 0
    assert head in again.stdout


def _walk(command: Any, path: list[str]) -> Iterator[list[str]]:
    """Every command path below ``command`` (Typer ships its own Click, so groups are duck-typed)."""
    yield path
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _walk(sub, [*path, name])


def test_help_works_on_every_command() -> None:
    root = typer.main.get_command(app)
    paths = list(_walk(root, []))
    names = {" ".join(p) for p in paths}
    assert {"serve", "migrate", "demo", "version"} <= names
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output, path


def test_serve_help_documents_its_options() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "160"})
    for option in ("--host", "--port", "--with-worker", "--no-migrate"):
        assert option in result.output
