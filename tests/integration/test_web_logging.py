"""Process-wide logging: JSON lines, stdlib routed through structlog, secrets redacted, request ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vpsbridge.config import load_settings
from vpsbridge.logs import (
    REDACTED,
    bound_request_id,
    configure_logging,
    get_logger,
    is_secret_key,
    reset_logging,
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    reset_logging()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_redact_secret_keys_and_known_values(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        bridge_secret="bridge-shared-secret-42",
        database_url="postgresql://vps:db-pass-9876@127.0.0.1/vps",
    )
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    log = get_logger("test")
    log.info(
        "configured",
        password="p@ss",
        api_key="k",
        Authorization="Bearer abc",
        credentials={"token": "t"},
        message="upstream said bridge-shared-secret-42 and db-pass-9876",
        nested={"headers": {"X-Api-Key": "zzz", "accept": "json"}},
        dedupe_key="deploy:7",
        request_id="kept",
    )
    (line,) = _lines(stream)
    assert line["event"] == "configured"
    for key in ("password", "api_key", "Authorization", "credentials"):
        assert line[key] == REDACTED, key
    assert line["message"] == f"upstream said {REDACTED} and {REDACTED}"
    assert line["nested"] == {"headers": {"X-Api-Key": REDACTED, "accept": "json"}}
    assert line["dedupe_key"] == "deploy:7"
    assert line["level"] == "info"
    assert "timestamp" in line
    raw = stream.getvalue()
    assert "bridge-shared-secret-42" not in raw
    assert "db-pass-9876" not in raw
    assert "p@ss" not in raw


def test_stdlib_records_get_request_id_and_redaction(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, metrics_token="metrics-token-value")
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    with bound_request_id("req-77"):
        logging.getLogger("some.library").warning("sent %s", "metrics-token-value")
    logging.getLogger("some.library").warning("outside")
    first, second = _lines(stream)
    assert first["request_id"] == "req-77"
    assert first["logger"] == "some.library"
    assert first["event"] == f"sent {REDACTED}"
    assert "request_id" not in second


def test_level_and_console_format(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging(
        load_settings(data_dir=tmp_path, log_level="warning", log_format="console"), stream=stream
    )
    log = get_logger("test")
    log.info("hidden")
    log.warning("shown", token="abc123")
    text = stream.getvalue()
    assert "hidden" not in text
    assert "shown" in text
    assert "abc123" not in text
    assert REDACTED in text
    assert not text.lstrip().startswith("{")


def test_reconfiguring_does_not_duplicate_lines(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    configure_logging(settings, stream=io.StringIO())
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    get_logger("test").info("once")
    assert len(_lines(stream)) == 1


def test_secret_key_names() -> None:
    for name in ("password", "api_key", "X-Api-Key", "bridgeSecret", "credentials_enc", "authorization"):
        assert is_secret_key(name), name
    for name in ("token_id", "request_id", "dedupe_key", "keys_loaded", "monkey", "status"):
        assert not is_secret_key(name), name
