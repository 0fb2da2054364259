"""Settings sources and their precedence, and the settings table in docs/configuration.md.

The documentation test is what keeps docs/configuration.md honest: a new setting without a row (or a
changed default) fails here until ``python docs/settings_table.py`` is run.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from vpsbridge.config import ConfigError, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No VPSBRIDGE_* variable or .env file of the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("VPSBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _settings_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_table", REPO / "docs" / "settings_table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_doc_lists_every_setting_as_generated() -> None:
    table = _settings_table()
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert text == table.render_document(text), "docs/configuration.md is stale: run docs/settings_table.py"
    for name in Settings.model_fields:
        assert f"`VPSBRIDGE_{name.upper()}` | `{name}` |" in text


def test_doc_check_detects_a_missing_row(tmp_path: Path) -> None:
    table = _settings_table()
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    drifted = "\n".join(line for line in text.splitlines() if "`VPSBRIDGE_PORT`" not in line) + "\n"
    assert drifted != text
    assert table.render_document(drifted) != drifted


def test_toml_file_env_and_overrides_in_priority_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "vpsbridge.toml"
    config.write_text(
        'port = 9001\nhost = "0.0.0.0"\nworker_concurrency = 3\n[task_intervals]\njob_log_purge = 7\n'
    )
    settings = load_settings(config)
    assert (settings.port, settings.host, settings.worker_concurrency) == (9001, "0.0.0.0", 3)
    assert settings.interval("job_log_purge") == 7

    monkeypatch.setenv("VPSBRIDGE_PORT", "9002")
    assert load_settings(config).port == 9002  # environment beats the file
    assert load_settings(config, port=9003).port == 9003  # explicit values beat the environment


def test_env_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("VPSBRIDGE_WORKER_CONCURRENCY=5\n")
    assert load_settings().worker_concurrency == 5


def test_nested_task_interval_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPSBRIDGE_TASK_INTERVALS__JOB_LOG_PURGE", "0")
    assert load_settings().interval("job_log_purge") == 0


def test_postgres_url_switches_to_scale_out_mode(tmp_path: Path) -> None:
    settings = load_settings(database_url="postgresql://u@db/x", data_dir=tmp_path)
    assert settings.effective_database_url == "postgresql+asyncpg://u@db/x"
    assert settings.mode == "scale-out"
    assert load_settings(data_dir=tmp_path).mode == "embedded"
    assert load_settings(data_dir=tmp_path).effective_database_url.endswith(f"{tmp_path}/vpsbridge.db")


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("port = 70000\n", "VPSBRIDGE_PORT"),
        ('databse_url = "x"\n', "VPSBRIDGE_DATABSE_URL: unknown setting"),
        ('database_url = "mysql://x"\n', "VPSBRIDGE_DATABASE_URL"),
        ("[task_intervals]\nstock = -1\n", "VPSBRIDGE_TASK_INTERVALS"),
        ("port = \n", "invalid configuration"),
    ],
)
def test_invalid_file_names_the_setting(tmp_path: Path, toml: str, named: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert named in str(err.value)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml")
