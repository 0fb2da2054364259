"""Audit details never keep a secret, even when a caller passes one by mistake."""

from __future__ import annotations

import pytest

from vpsbridge.services.audit import Actor, _scrub


def test_secret_values_are_replaced_descriptions_kept() -> None:
    details = {
        "name": "vf",
        "password": "hunter2",
        "credentials": {"token": "abc"},
        "nested": [{"api_key": "k1"}, {"Authorization": "Bearer x"}],
        "token_prefix": "ab12cd34ef",
        "token_id": 7,
        "has_credentials": True,
        "fields": ["credentials", "url"],
        "secret": None,
    }
    scrubbed = _scrub(details)
    assert scrubbed == {
        "name": "vf",
        "password": "[redacted]",
        "credentials": "[redacted]",
        "nested": [{"api_key": "[redacted]"}, {"Authorization": "[redacted]"}],
        "token_prefix": "ab12cd34ef",
        "token_id": 7,
        "has_credentials": True,
        "fields": ["credentials", "url"],
        "secret": None,
    }


def test_actor_types_are_checked() -> None:
    assert Actor.cli().type == "cli"
    assert Actor.system("demo") == Actor(type="system", id="demo")
    with pytest.raises(ValueError, match="unknown actor type"):
        Actor(type="robot")  # type: ignore[arg-type]
