"""Workflows and periodic tasks used by the job-engine tests, in-process and in worker subprocesses.

Every step execution appends one line to a record file (``VPSBRIDGE_TEST_RECORD``) opened with
O_APPEND, so executions by several processes land intact in one file that the test reads back:
``<job_id> <step> <event> <pid> <monotonic-ish wall time>``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vpsbridge.jobs.periodic import TaskLog, TaskResult, periodic_task
from vpsbridge.workflows.base import Done, Fail, Retry, Step, StepContext, Wait, Workflow, register_workflow

RECORD_ENV = "VPSBRIDGE_TEST_RECORD"


def record(job_id: int | str, step: str, event: str) -> None:
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    line = f"{job_id} {step} {event} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_records(path: Path) -> list[tuple[str, str, str, int, float]]:
    if not path.exists():
        return []
    out = []
    for raw in path.read_text().splitlines():
        job, step, event, pid, ts = raw.split()
        out.append((job, step, event, int(pid), float(ts)))
    return out


def _simple(name: str) -> Step:
    async def run(ctx: StepContext) -> Done:
        record(ctx.job_id, name, "run")
        ctx.state[name] = ctx.attempt
        delay = float(ctx.payload.get("sleep", 0))
        if delay:
            await asyncio.sleep(delay)
        return Done()

    return Step(name, run)


# --- three plain steps (exactly-once across workers) -----------------------------------------
register_workflow(Workflow("t.three", (_simple("a"), _simple("b"), _simple("c"))))


# --- a step that hangs while a marker file exists (SIGKILL mid-step) ---------------------------
async def _hang_b(ctx: StepContext) -> Done:
    record(ctx.job_id, "b", "start")
    await ctx.log("b started")
    marker = Path(str(ctx.payload["hang_file"]))
    while marker.exists():
        await asyncio.sleep(0.02)
    # The earlier step's state survived the crash: proves resumption, not a restart.
    ctx.state["b_saw_a"] = ctx.state.get("a")
    record(ctx.job_id, "b", "end")
    return Done({"b_saw_a": ctx.state.get("a")})


register_workflow(Workflow("t.hang", (_simple("a"), Step("b", _hang_b), _simple("c"))))


# --- always retries (backoff) ------------------------------------------------------------------
async def _flaky(ctx: StepContext) -> Retry:
    record(ctx.job_id, "flaky", f"attempt{ctx.attempt}")
    return Retry(f"upstream said no (attempt {ctx.attempt})")


register_workflow(Workflow("t.flaky", (Step("flaky", _flaky),), max_attempts=4))


async def _boom(ctx: StepContext) -> Done:
    record(ctx.job_id, "boom", f"attempt{ctx.attempt}")
    if ctx.attempt < 2:
        raise RuntimeError("connection reset")
    return Done({"recovered_on": ctx.attempt})


register_workflow(Workflow("t.boom", (Step("boom", _boom),), max_attempts=3))


async def _fail(ctx: StepContext) -> Fail:
    record(ctx.job_id, "fail", "run")
    return Fail("plan does not exist")


register_workflow(Workflow("t.fail", (_simple("a"), Step("fail", _fail), _simple("c"))))


# --- waits once, then completes ----------------------------------------------------------------
async def _poll(ctx: StepContext) -> Done | Wait:
    polls = int(ctx.state.get("polls", 0)) + 1
    ctx.state["polls"] = polls
    record(ctx.job_id, "poll", f"poll{polls}")
    if polls < 3:
        return Wait(float(ctx.payload.get("wait", 1)), "build still running")
    return Done({"polls": polls})


register_workflow(Workflow("t.wait", (Step("poll", _poll),), max_attempts=1))


# --- per-resource exclusion ----------------------------------------------------------------------
async def _on_server(ctx: StepContext) -> Done:
    record(ctx.job_id, f"server{ctx.payload['server']}", "start")
    await asyncio.sleep(float(ctx.payload.get("sleep", 0.03)))
    record(ctx.job_id, f"server{ctx.payload['server']}", "end")
    return Done()


def _server_key(payload: Mapping[str, Any]) -> str:
    return f"server:{payload['server']}"


register_workflow(
    Workflow("t.server", (Step("one", _on_server), Step("two", _on_server)), resource_key=_server_key)
)


# --- log lines in order --------------------------------------------------------------------------
async def _chatty(ctx: StepContext) -> Done:
    for i in range(int(ctx.payload.get("lines", 5))):
        await ctx.log(f"line {i}", "debug" if i % 2 else "info")
    return Done()


register_workflow(Workflow("t.chatty", (Step("talk", _chatty), Step("more", _chatty))))


# --- a step that sleeps long (cancellation while running) ----------------------------------------
async def _long(ctx: StepContext) -> Done:
    record(ctx.job_id, ctx.step, "run")
    await asyncio.sleep(float(ctx.payload.get("sleep", 0.3)))
    return Done()


register_workflow(Workflow("t.long", (Step("first", _long), Step("second", _long))))


# --- periodic tasks --------------------------------------------------------------------------------
@periodic_task("t_tick", default_interval=3600)
async def t_tick(app: Any, log: TaskLog) -> TaskResult:
    record("tick", "t_tick", "run")
    await log("tick")
    return TaskResult(processed=1, errors=0, details={"pid": os.getpid()})


@periodic_task("t_never", default_interval=0)
async def t_never(app: Any, log: TaskLog) -> TaskResult:
    record("never", "t_never", "run")
    return TaskResult(processed=1)


# --- echoes its payload into the log and into an exception (secret redaction) --------------------
async def _echo(ctx: StepContext) -> Done:
    await ctx.log(f"upstream said: {ctx.payload['text']}")
    if ctx.attempt == 1:
        raise RuntimeError(f"401 for {ctx.payload['text']}")
    return Done()


register_workflow(Workflow("t.echo", (Step("echo", _echo),), max_attempts=2))


# --- a step that kills its own worker process every time (poison job) --------------------------
async def _poison(ctx: StepContext) -> Done:
    record(ctx.job_id, "poison", f"attempt{ctx.attempt}")
    os.kill(os.getpid(), 9)
    return Done()  # never reached


register_workflow(Workflow("t.poison", (Step("poison", _poison),), max_attempts=2))
