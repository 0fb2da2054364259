"""What every Proxmox workflow step shares: its records, its driver, deadlines and failure rules.

Failure rules (applied by :func:`guarded` around every step):

* a locked VM (``VM is locked``, a busy config file) is not an error: the step waits and comes back;
* an unknown outcome (timeout, 5xx, 595/596, a task we stopped waiting for) and a failed Proxmox
  task are retried with backoff - the step runs again from the top, so every step first looks at
  what already exists before changing anything;
* :class:`StepFailed` is a definite answer that retrying cannot change: the workflow ends at once;
* when the last attempt is used up, or on :class:`StepFailed`, the workflow's ``on_failure`` hook
  records the outcome on the service (a deploy becomes ``failed``, a terminate ``error_terminate``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from vpsbridge.http.errors import UpstreamError, UpstreamUnavailable
from vpsbridge.logs import get_logger
from vpsbridge.platforms.errors import ServerLocked
from vpsbridge.platforms.models import ServerRef, TaskHandle
from vpsbridge.platforms.proxmox import ProxmoxPlatform
from vpsbridge.services.provisioning.drivers import open_driver
from vpsbridge.services.provisioning.events import ServiceEvent, deliver
from vpsbridge.services.provisioning.records import set_server, set_service
from vpsbridge.store.models import Server, Service
from vpsbridge.workflows.base import Done, Fail, Outcome, Retry, StepContext, Wait, get_workflow

log = get_logger(__name__)

StepFn = Callable[[StepContext], Awaitable[Outcome]]
FailureHook = Callable[[StepContext, str], Awaitable[None]]


class StepFailed(Exception):
    """A definite failure (bad product settings, no address left ...): do not retry."""


@dataclass(frozen=True)
class Records:
    """The service and server a job works on (detached copies)."""

    service_id: int
    server_id: int
    platform_id: int
    status: str
    billing_service_id: str | None
    client_id: str
    vmid: str | None
    node: str | None
    hostname: str | None
    last_known: dict[str, Any]

    @property
    def ref(self) -> ServerRef:
        if not self.vmid:
            raise StepFailed(f"server {self.server_id} has no VMID yet")
        return ServerRef(external_id=self.vmid, node=self.node)


async def load(ctx: StepContext) -> Records:
    service_id = int(ctx.payload["service_id"])
    server_id = int(ctx.payload["server_id"])
    async with ctx.app.db.session() as session:
        service = await session.get(Service, service_id)
        server = await session.get(Server, server_id)
        if service is None or server is None:
            raise StepFailed(f"service {service_id} or server {server_id} no longer exists")
        return Records(
            service_id=service.id,
            server_id=server.id,
            platform_id=server.platform_id,
            status=service.status,
            billing_service_id=service.billing_service_id,
            client_id=service.client_id,
            vmid=server.external_id,
            node=server.node,
            hostname=server.hostname,
            last_known=dict(server.last_known or {}),
        )


@contextlib.asynccontextmanager
async def driver_for(ctx: StepContext) -> AsyncIterator[ProxmoxPlatform]:
    async with open_driver(ctx.app, int(ctx.payload["platform_id"])) as (driver, _config):
        if not isinstance(driver, ProxmoxPlatform):
            raise StepFailed(f"platform {ctx.payload['platform_id']} is not a Proxmox cluster")
        yield driver


def deadline(ctx: StepContext, key: str, seconds: float) -> float:
    """A wall-clock deadline kept in job state (so a resumed step keeps the original one)."""
    value = ctx.state.get(key)
    if value is None:
        value = time.time() + _scaled(ctx, seconds)
        ctx.state[key] = value
    return float(value)


def _scaled(ctx: StepContext, seconds: float) -> float:
    return seconds * ctx.app.settings.time_scale


def scaled(ctx: StepContext, seconds: float) -> float:
    return _scaled(ctx, seconds)


async def poll_task(driver: ProxmoxPlatform, upid: str, kind: str) -> TaskHandle:
    """One look at a task: running, succeeded or failed (never raises for a failed task)."""
    return await driver.task_status(TaskHandle(id=upid, kind=kind, state="running"))


async def finish(
    driver: ProxmoxPlatform, task: TaskHandle | None, ctx: StepContext, *, seconds: float = 120
) -> None:
    """Wait for a short task (config, resize) inside the step; a failure raises for a retry."""
    if task is None:
        return
    await driver.wait(task, timeout=max(_scaled(ctx, seconds), 5.0))


async def update_server(ctx: StepContext, **values: Any) -> None:
    await set_server(ctx.app.db, int(ctx.payload["server_id"]), **values)


async def update_service(ctx: StepContext, **values: Any) -> bool:
    lifecycle = values.pop("lifecycle", None)
    return await set_service(ctx.app.db, int(ctx.payload["service_id"]), lifecycle=lifecycle, **values)


async def event(ctx: StepContext, kind: str, records: Records, details: Mapping[str, Any]) -> None:
    """Deliver a service event at least once (listeners that already ran are not run again)."""
    done = cast(dict[str, Any], ctx.state.setdefault("events", {}))
    await deliver(
        ctx.app,
        ServiceEvent(
            kind=kind,
            event_id=f"{kind}:job:{ctx.job_id}",
            service_id=records.service_id,
            billing_service_id=records.billing_service_id,
            client_id=records.client_id,
            server_id=records.server_id,
            details=dict(details),
        ),
        done,
    )


def _max_attempts(ctx: StepContext) -> int:
    workflow = get_workflow(ctx.kind)
    if workflow is not None and workflow.max_attempts is not None:
        return workflow.max_attempts
    return ctx.app.settings.job_max_attempts


def guarded(fn: StepFn, on_failure: FailureHook | None, *, retry: bool = True) -> StepFn:
    """Wrap a step with the failure rules above (``retry=False``: any error is final)."""

    async def run(ctx: StepContext) -> Outcome:
        try:
            outcome = await fn(ctx)
        except ServerLocked as exc:
            await ctx.log(f"the VM is busy ({exc}); trying again shortly", "warning")
            return Wait(5, str(exc))
        except StepFailed as exc:
            return await _give_up(ctx, on_failure, str(exc))
        except (UpstreamError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if not retry and not isinstance(exc, UpstreamUnavailable):
                return await _give_up(ctx, on_failure, str(exc))
            if ctx.attempt >= _max_attempts(ctx):
                return await _give_up(ctx, on_failure, str(exc))
            await ctx.log(f"{ctx.step}: {reason}; will try again", "warning")
            return Retry(reason)
        if isinstance(outcome, Retry) and ctx.attempt >= _max_attempts(ctx):
            return await _give_up(ctx, on_failure, outcome.reason)
        if isinstance(outcome, Fail):
            return await _give_up(ctx, on_failure, outcome.reason)
        return outcome

    return run


async def _give_up(ctx: StepContext, on_failure: FailureHook | None, reason: str) -> Fail:
    message = f"{ctx.step}: {reason}"
    await ctx.log(message, "error")
    if on_failure is not None:
        try:
            await on_failure(ctx, message)
        except Exception as exc:  # the job still ends failed; the hook's trouble is logged
            await ctx.log(f"recording the failure failed: {type(exc).__name__}: {exc}", "error")
    return Fail(message)


def skipped(ctx: StepContext, reason: str) -> Done:
    """A step with nothing to do: recorded in the job result as ``skipped: <reason>``."""
    return Done({f"{ctx.step}": f"skipped: {reason}"})


__all__ = [
    "Records",
    "StepFailed",
    "deadline",
    "driver_for",
    "event",
    "finish",
    "guarded",
    "load",
    "poll_task",
    "scaled",
    "skipped",
    "update_server",
    "update_service",
]
