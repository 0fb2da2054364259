"""Redaction rules: secrets never survive into logged URLs, bodies or messages."""

from __future__ import annotations

import json

import pytest

from vpsbridge.http.redact import (
    MASK,
    is_secret_name,
    redact_body,
    redact_url,
    redact_value,
    scrub_text,
    secret_parts,
    truncate,
)


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "Password",
        "api_key",
        "apiKey",
        "X-API-Key",
        "apikey",
        "access_token",
        "secretKey",
        "Authorization",
        "root_password",
        "key",
        "hash",
        "CSRFPreventionToken",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["hostname", "monkey", "keys_loaded", "token_id", "request_id", "id", "name"]
)
def test_non_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def test_redact_url_masks_query_userinfo_and_literals() -> None:
    url = "https://admin:hunter22@pve.example:8006/api/v1/servers/tok3n-secret-xyz?api_key=abcdef&page=2"
    out = redact_url(url, ["tok3n-secret-xyz"])
    assert "hunter22" not in out
    assert "abcdef" not in out
    assert "tok3n-secret-xyz" not in out
    assert "page=2" in out
    assert f"api_key={MASK}" in out
    assert out.startswith("https://admin:***@pve.example:8006/api/v1/servers/")


def test_redact_json_body_by_key_and_value() -> None:
    body = json.dumps(
        {
            "hostname": "a.example",
            "password": "p4ssw0rd!",
            "nested": {"apiToken": "zzz"},
            "note": "my literal-secret-value here",
            "items": [{"secret": "x1"}],
        }
    ).encode()
    out = redact_body(body, "application/json", ["literal-secret-value"])
    assert out is not None
    parsed = json.loads(out)
    assert parsed["hostname"] == "a.example"
    assert parsed["password"] == MASK
    assert parsed["nested"]["apiToken"] == MASK
    assert parsed["items"][0]["secret"] == MASK
    assert parsed["note"] == f"my {MASK} here"


def test_redact_form_body() -> None:
    out = redact_body(b"user=root&password=s3cr3t&cmd=v-list", "application/x-www-form-urlencoded")
    assert out == f"user=root&password={MASK}&cmd=v-list"


def test_redact_text_and_binary_bodies() -> None:
    assert (
        redact_body(b"error: bad token abcdef123456", "text/plain", ["abcdef123456"])
        == f"error: bad token {MASK}"
    )
    assert redact_body(b"\xff\xfe\x00\x01", "application/octet-stream") == "<4 bytes of binary data>"
    assert redact_body(b"", "application/json") is None
    assert redact_body(None, None) is None


def test_malformed_json_still_scrubbed_by_value() -> None:
    out = redact_body(b'{"password": "abc-secret-1', "application/json", ["abc-secret-1"])
    assert out is not None
    assert "abc-secret-1" not in out


def test_truncate_counts_bytes_and_keeps_utf8_valid() -> None:
    text = "é" * 100  # 200 bytes
    out = truncate(text, 11)
    assert out.startswith("é" * 5)
    assert out.endswith("[truncated 190 bytes]")
    assert truncate("short", 100) == "short"
    long_body = json.dumps({"data": "x" * 5000}).encode()
    redacted = redact_body(long_body, "application/json", limit=100)
    assert redacted is not None
    assert "truncated" in redacted
    assert len(redacted) < 200


def test_secret_parts_of_auth_headers() -> None:
    assert "abcdefgh1234" in secret_parts("Bearer abcdefgh1234")
    parts = secret_parts("PVEAPIToken=root@pam!ci=0b8a9c6e-1111-2222-3333-444455556666")
    assert "0b8a9c6e-1111-2222-3333-444455556666" in parts


def test_scrub_longest_first_and_short_values_ignored() -> None:
    assert scrub_text("token abcdefXYZ", ["abcdef", "abcdefXYZ"]) == f"token {MASK}"
    assert scrub_text("abc abc", ["abc"]) == "abc abc"
    assert redact_value({"password": None, "a": ["x"]}) == {"password": None, "a": ["x"]}
