"""``service.terminate``: delete a service's server after its grace period, never on a guess.

Steps:

``revoke_access``
    When there is a delay, suspend the server at once so the client loses access immediately.
``grace``
    Wait until the requested time (``not_before``).
``delete``
    Ask the platform to delete the server. A server the platform *confirms* missing is success.
``await_delete``
    Poll the deletion task.
``dns``
    Queue the deletion of the PTRs and forward records (addresses captured before the release).
``cleanup``
    Mark the server gone, forget its platform id (platforms reuse ids), drop its stored login,
    release its IPAM addresses, mark the service ``terminated``.
``notify``
    Deliver ``terminated``.

An upstream that does not answer is retried and never read as "deleted": when the attempts run out,
or the platform refuses, the service goes to ``error_terminate`` with the reason, its addresses
stay allocated, ``terminate_failed`` is raised, and an operator decides (retry the job, or
terminate again).
"""

from __future__ import annotations

import datetime as dt

from vpsbridge.http.errors import UpstreamNotFound, UpstreamRejected
from vpsbridge.platforms.base import Platform as Driver
from vpsbridge.platforms.models import TaskHandle
from vpsbridge.services.provisioning.events import emit
from vpsbridge.services.provisioning.flavours import Flavour
from vpsbridge.services.provisioning.lifecycle import JOB_ATTEMPTS, TERMINATE
from vpsbridge.services.provisioning.records import release_server_addresses, set_service
from vpsbridge.store.models import Server, utcnow
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
from vpsbridge.workflows.server_sync import (
    deliver_event,
    last_attempt,
    poll_task,
    server_ref,
    server_resource,
    service_event,
    upstream_outcome,
    with_driver,
)

#: Longest single wait in the grace step (the job re-checks, so a changed clock is harmless).
GRACE_CHUNK_SECONDS = 300.0


async def fail_terminate(ctx: StepContext, message: str) -> Fail:
    """``error_terminate``: nothing is released; an operator decides."""
    await set_service(
        ctx.app.db,
        int(ctx.payload["service_id"]),
        expect=("terminating",),
        status="error_terminate",
        last_error=message,
    )
    await ctx.log(message, "error")
    await emit(ctx.app, await service_event(ctx, "terminate_failed", {"error": message}))
    return Fail(message)


async def retry_or_fail(ctx: StepContext, outcome: Outcome, doing: str) -> Outcome:
    if isinstance(outcome, Retry) and last_attempt(ctx):
        return await fail_terminate(ctx, f"gave up {doing}: {outcome.reason}")
    return outcome


def _not_before(ctx: StepContext) -> dt.datetime:
    return dt.datetime.fromisoformat(str(ctx.payload["not_before"]))


async def step_revoke_access(ctx: StepContext) -> Outcome:
    if _not_before(ctx) <= utcnow() or ctx.payload.get("previous_status") == "suspended":
        return Done({"suspended_first": False})
    ref = await server_ref(ctx)
    if ref is None:
        return Done()
    try:
        task: TaskHandle = await with_driver(ctx, lambda d, _f: d.suspend(ref))
    except UpstreamNotFound:
        ctx.state["gone"] = True
        return Done({"server_missing": True})
    except UpstreamRejected as exc:
        await ctx.log(f"the platform refused to suspend before deleting ({exc}); going on", "warning")
        return Done()
    except Exception as exc:
        outcome = upstream_outcome(exc, ctx, "suspending before the delete")
        if outcome is None:
            raise
        return await retry_or_fail(ctx, outcome, "suspending before the delete")
    if task.result.get("server_missing"):
        ctx.state["gone"] = True
    return Done({"suspended_first": True})


async def step_grace(ctx: StepContext) -> Outcome:
    remaining = (_not_before(ctx) - utcnow()).total_seconds()
    if remaining <= 0:
        return Done()
    # Wait takes unscaled seconds and scales them; the deadline is already absolute.
    scale = ctx.app.settings.scaled(1.0) or 1.0
    return Wait(min(remaining, GRACE_CHUNK_SECONDS) / scale, "waiting for the termination delay")


async def step_delete(ctx: StepContext) -> Outcome:
    if ctx.state.get("gone") or ctx.state.get("delete_task"):
        return Done()
    ref = await server_ref(ctx)
    if ref is None:
        ctx.state["gone"] = True
        return Done()

    async def run(driver: Driver, _flavour: Flavour) -> TaskHandle:
        return await driver.terminate(ref)

    try:
        task: TaskHandle = await with_driver(ctx, run)
    except UpstreamNotFound:
        ctx.state["gone"] = True
        return Done({"server_missing": True})
    except UpstreamRejected as exc:
        return await fail_terminate(ctx, f"the platform refused to delete the server: {exc}")
    except Exception as exc:
        outcome = upstream_outcome(exc, ctx, "deleting the server")
        if outcome is None:
            raise
        return await retry_or_fail(ctx, outcome, "deleting the server")
    if task.result.get("server_missing"):
        ctx.state["gone"] = True
    ctx.state["delete_task"] = task.model_dump(mode="json")
    return Done({"delete_task": task.id})


async def step_await_delete(ctx: StepContext) -> Outcome:
    if ctx.state.get("gone"):
        return Done()
    result = await poll_task(ctx, "delete_task", "deleting the server")
    if not isinstance(result, TaskHandle):
        return await retry_or_fail(ctx, result, "waiting for the delete")
    if result.state == "failed":
        return await fail_terminate(
            ctx, f"the platform failed to delete the server: {result.error or 'no reason'}"
        )
    return Done()


async def step_dns(ctx: StepContext) -> Outcome:
    """Queue the deletion of the server's PTRs and forward records.

    Runs once the server is deleted and *before* ``cleanup`` releases its addresses: the hook
    snapshots the addresses into its job, and after the release they would be unknown. DNS
    trouble is logged and never holds up the termination.
    """
    from vpsbridge.services.dns.hooks import on_server_terminated

    try:
        job = await on_server_terminated(ctx.app, int(ctx.payload["server_id"]))
    except Exception as exc:
        await ctx.log(f"DNS records not queued for deletion ({type(exc).__name__}: {exc})", "warning")
        return Done({"dns_queued": False})
    return Done({"dns_job": job})


async def step_cleanup(ctx: StepContext) -> Outcome:
    server_id = int(ctx.payload["server_id"])
    async with ctx.app.db.session() as session:
        server = await session.get(Server, server_id)
        released = 0
        if server is not None:
            server.last_known = {
                **(server.last_known or {}),
                "external_id": server.external_id,
                "terminated_at": utcnow().isoformat(),
            }
            server.external_id = None
            server.state = "gone"
            server.credentials_enc = None
            released = await release_server_addresses(session, server_id)
        await set_service(
            session,
            int(ctx.payload["service_id"]),
            expect=("terminating",),
            status="terminated",
            last_error=None,
            lifecycle={"terminated_at": utcnow().isoformat()},
        )
    return Done({"released_addresses": released})


async def step_notify(ctx: StepContext) -> Outcome:
    return await deliver_event(ctx, "terminated", {"server_missing": bool(ctx.state.get("gone"))})


TERMINATE_WORKFLOW = register_workflow(
    Workflow(
        name=TERMINATE,
        steps=(
            Step("revoke_access", step_revoke_access),
            Step("grace", step_grace),
            Step("delete", step_delete),
            Step("await_delete", step_await_delete),
            Step("dns", step_dns),
            Step("cleanup", step_cleanup),
            Step("notify", step_notify),
        ),
        resource_key=server_resource,
        max_attempts=JOB_ATTEMPTS[TERMINATE],
    )
)
