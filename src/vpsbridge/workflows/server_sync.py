"""``service.sync``: follow up on an accepted change (wait for its task, refresh the server record).

Also home of the step helpers the other service workflows share (``deploy``, ``terminate``,
``change_package``): opening the platform driver, polling a task handle, refreshing the record from
the platform, delivering a service event at least once, and turning driver errors into step
outcomes by the tri-state rule:

* a server the platform **confirms** missing is an answer (the caller decides what it means);
* a server **locked** by another task is waited for, never counted as a failure;
* **unknown** (timeouts, 5xx, garbage) is retried with backoff, and never read as "gone" or "done";
* a definite **refusal** ends the job with the platform's own reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from vpsbridge.http.errors import UpstreamRejected, UpstreamUnavailable
from vpsbridge.platforms.base import Platform as Driver
from vpsbridge.platforms.errors import ServerLocked, ServerMissing
from vpsbridge.platforms.models import ServerInfo, ServerRef, TaskHandle
from vpsbridge.services.provisioning.drivers import build_driver, platform_config
from vpsbridge.services.provisioning.events import ServiceEvent, deliver
from vpsbridge.services.provisioning.flavours import Flavour, flavour_for
from vpsbridge.services.provisioning.lifecycle import CHANGE_PACKAGE, JOB_ATTEMPTS, SYNC, resource_key
from vpsbridge.services.provisioning.records import set_server, set_service
from vpsbridge.store.models import Server, Service
from vpsbridge.workflows.base import (
    Done,
    Fail,
    Outcome,
    Retry,
    Step,
    StepContext,
    Wait,
    Workflow,
    register_workflow,
)

#: Seconds between polls of a platform task (scaled by ``time_scale``).
POLL_SECONDS = 5.0
#: Seconds to wait for a server locked by another platform task.
LOCKED_WAIT_SECONDS = 10.0


# --- shared helpers ---------------------------------------------------------------------------------


async def with_driver(ctx: StepContext, call: Callable[[Driver, Flavour], Awaitable[Any]]) -> Any:
    """Run ``call`` with the driver and flavour of the job's platform, closing the driver after."""
    config = await platform_config(ctx.app, int(ctx.payload["platform_id"]))
    driver = build_driver(ctx.app, config)
    try:
        return await call(driver, flavour_for(config.type))
    finally:
        await driver.aclose()


async def server_ref(ctx: StepContext) -> ServerRef | None:
    async with ctx.app.db.session() as session:
        row = await session.get(Server, int(ctx.payload["server_id"]))
        if row is None or not row.external_id:
            return None
        return ServerRef(external_id=row.external_id, node=row.node)


def handle_from(data: Any) -> TaskHandle | None:
    return TaskHandle.model_validate(data) if isinstance(data, dict) else None


def upstream_outcome(exc: Exception, ctx: StepContext, doing: str) -> Outcome | None:
    """The outcome for an exception that is not an answer (locked / unknown); ``None`` otherwise."""
    if isinstance(exc, ServerLocked):
        return Wait(LOCKED_WAIT_SECONDS, f"the server is locked by another platform task while {doing}")
    if isinstance(exc, UpstreamUnavailable):
        return Retry(f"the platform did not answer while {doing}: {exc}")
    return None


def last_attempt(ctx: StepContext) -> bool:
    """True when a Retry now would end the job (the engine gives up after the workflow's attempts)."""
    return ctx.attempt >= JOB_ATTEMPTS.get(ctx.kind, 8)


async def poll_task(ctx: StepContext, key: str, doing: str) -> Outcome | TaskHandle:
    """Poll the task stored under ``key`` (job state first, then payload) until it has finished.

    Returns the finished handle, or the outcome the step should return meanwhile (``Wait`` while
    running, ``Retry`` when the platform does not answer).
    """
    task = handle_from(ctx.state.get(key, ctx.payload.get(key)))
    if task is None:
        return TaskHandle(id="none", kind="none", state="succeeded")
    if task.finished:
        return task
    try:
        current: TaskHandle = await with_driver(ctx, lambda d, _f: d.task_status(task))
    except Exception as exc:
        outcome = upstream_outcome(exc, ctx, doing)
        if outcome is None:
            raise
        return outcome
    ctx.state[key] = current.model_dump(mode="json")
    if not current.finished:
        progress = f" ({current.progress}%)" if current.progress is not None else ""
        return Wait(POLL_SECONDS, f"{doing}{progress}")
    return current


def server_state(info: ServerInfo) -> str:
    """The record's server state from the platform's view."""
    if info.suspended:
        return "suspended"
    return info.state


async def refresh_record(ctx: StepContext, info: ServerInfo) -> bool:
    """Write what the platform says into the server record; True when its addresses changed."""
    server_id = int(ctx.payload["server_id"])
    async with ctx.app.db.session() as session:
        row = await session.get(Server, server_id)
        before = dict(row.last_known or {}) if row is not None else {}
        changed = sorted(before.get("ipv4") or []) != sorted(info.ipv4) or sorted(
            before.get("ipv6") or []
        ) != sorted(info.ipv6)
        values: dict[str, Any] = {
            "state": server_state(info),
            "last_known": {
                "ipv4": list(info.ipv4),
                "ipv6": list(info.ipv6),
                "cpu_cores": info.cpu_cores,
                "memory_mb": info.memory_mb,
                "disk_gb": info.disk_gb,
                "os_template": info.os_template,
                "power": info.state,
            },
        }
        if info.hostname:
            values["hostname"] = info.hostname
        if info.ref.node:
            values["node"] = info.ref.node
        await set_server(session, server_id, **values)
    return changed


async def service_event(ctx: StepContext, kind: str, details: dict[str, Any] | None = None) -> ServiceEvent:
    async with ctx.app.db.session() as session:
        service = await session.get(Service, int(ctx.payload["service_id"]))
        if service is None:
            raise LookupError(f"service {ctx.payload['service_id']} no longer exists")
        return ServiceEvent(
            kind=kind,
            event_id=f"{kind}:job:{ctx.job_id}",
            service_id=service.id,
            billing_service_id=service.billing_service_id,
            client_id=service.client_id,
            server_id=int(ctx.payload["server_id"]),
            details=dict(details or {}),
        )


async def deliver_event(ctx: StepContext, kind: str, details: dict[str, Any] | None = None) -> Outcome:
    """Deliver an event from a step: listeners that failed are retried on the next attempt only."""
    event = await service_event(ctx, kind, details)
    done = ctx.state.setdefault("delivered", {})
    try:
        await deliver(ctx.app, event, done)
    except Exception as exc:
        if last_attempt(ctx):
            await ctx.log(f"giving up delivering {kind}: {exc}", "error")
            return Fail(f"could not deliver {kind}: {exc}")
        return Retry(str(exc))
    return Done()


async def note_failure(ctx: StepContext, message: str) -> None:
    await set_service(ctx.app.db, int(ctx.payload["service_id"]), last_error=message)


# --- the sync workflow ------------------------------------------------------------------------------


async def step_await_task(ctx: StepContext) -> Outcome:
    result = await poll_task(ctx, "task", "waiting for the platform task")
    if not isinstance(result, TaskHandle):
        return result
    if result.state == "failed":
        message = f"the platform task {result.kind} failed: {result.error or 'no reason given'}"
        await note_failure(ctx, message)
        return Fail(message)
    return Done()


async def step_refresh(ctx: StepContext) -> Outcome:
    ref = await server_ref(ctx)
    if ref is None:
        return Done({"refreshed": False})
    try:
        info: ServerInfo = await with_driver(ctx, lambda d, _f: d.server_info(ref, live=True))
    except ServerMissing:
        await set_server(ctx.app.db, int(ctx.payload["server_id"]), state="missing")
        await note_failure(ctx, "the platform no longer has this server")
        return Done({"refreshed": False, "missing": True})
    except UpstreamRejected as exc:
        return Fail(f"the platform refused to describe the server: {exc}")
    except Exception as exc:
        outcome = upstream_outcome(exc, ctx, "reading the server")
        if outcome is None:
            raise
        return outcome
    ctx.state["addresses_changed"] = await refresh_record(ctx, info)
    return Done({"refreshed": True})


async def step_notify(ctx: StepContext) -> Outcome:
    kind = ctx.payload.get("event")
    if kind:
        details: dict[str, Any] = {}
        if "warnings" in ctx.payload:
            details["warnings"] = list(ctx.payload.get("warnings") or [])
        return await deliver_event(ctx, str(kind), details)
    if ctx.state.get("addresses_changed"):
        return await deliver_event(ctx, "addresses_changed")
    return Done()


def server_resource(payload: Any) -> str | None:
    return resource_key(int(payload["server_id"])) if "server_id" in payload else None


SYNC_STEPS = (
    Step("await_task", step_await_task),
    Step("refresh", step_refresh),
    Step("notify", step_notify),
)

SYNC_WORKFLOW = register_workflow(
    Workflow(name=SYNC, steps=SYNC_STEPS, resource_key=server_resource, max_attempts=JOB_ATTEMPTS[SYNC])
)

__all__ = [
    "CHANGE_PACKAGE",
    "SYNC_STEPS",
    "SYNC_WORKFLOW",
    "deliver_event",
    "handle_from",
    "last_attempt",
    "note_failure",
    "poll_task",
    "refresh_record",
    "server_ref",
    "upstream_outcome",
    "with_driver",
]
