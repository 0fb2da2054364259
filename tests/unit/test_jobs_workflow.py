"""Workflow definitions and the registry; log line formatting."""

from __future__ import annotations

import datetime as dt

import pytest

from vpsbridge.jobs.queue import LogLine
from vpsbridge.workflows import Done, Step, StepContext, Workflow, get_workflow, register_workflow


async def _noop(ctx: StepContext) -> Done:
    return Done()


def test_workflow_needs_unique_named_steps() -> None:
    with pytest.raises(ValueError, match="no steps"):
        Workflow("empty", ())
    with pytest.raises(ValueError, match="duplicate"):
        Workflow("dup", (Step("a", _noop), Step("a", _noop)))


def test_registry_and_resource_key() -> None:
    wf = register_workflow(
        Workflow("unit.deploy", [Step("create", _noop)], resource_key=lambda p: f"server:{p['server_id']}")  # type: ignore[arg-type]
    )
    assert get_workflow("unit.deploy") is wf
    assert isinstance(wf.steps, tuple)
    assert wf.resource_key({"server_id": 7}) == "server:7"
    assert Workflow("unit.plain", (Step("x", _noop),)).resource_key({}) is None
    assert get_workflow("unit.missing") is None


def test_log_line_format() -> None:
    ts = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    assert (
        LogLine(1, 42, ts, "info", "build", "done").format()
        == "2026-01-02T03:04:05.678Z job 42 [build]: done"
    )
    assert LogLine(2, None, ts, "warning", "purge", "slow").format() == (
        "2026-01-02T03:04:05.678Z task [purge] WARNING: slow"
    )
