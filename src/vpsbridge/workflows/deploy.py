"""``service.deploy``: everything after the platform accepted a create, up to "provisioned".

Steps (each idempotent; the job resumes after the last completed one on any worker):

``resolve``
    Only for a create whose outcome was unknown, on platforms that can list a client's servers:
    after a pause, adopt the one server that appeared, or confirm none was created. Never guesses.
``await_create``
    Poll the platform's create task (a no-op where the create is synchronous, e.g. VirtFusion).
``build``
    Install the OS. The root password is encrypted and stored the moment it is known (our own for
    most platforms; VirtFusion returns the one it generated in the build answer). A marker written
    *before* the request means a worker that died mid-request never builds twice: the next run
    looks at the server instead and only rebuilds when it sees no build happened.
``await_build``
    Poll the build task (VirtFusion: the server object; queue tasks elsewhere) until it finishes.
``credentials``
    When the password is not known (a build resumed after a crash), reset it once to learn one.
``sync``
    Record addresses, host name and state; on platforms where IPv6 shows up seconds after the build
    (VirtFusion), wait for it for a bounded time. The service becomes ``active``.
``dns``
    Queue the forward records and PTRs (a ``dns_sync`` job); a DNS failure is logged, never fatal.
``notify``
    Deliver ``provisioned`` (at least once) so billing can store the IPs and send the welcome e-mail.

A definite refusal or a failed build marks the service ``failed`` with the platform's reason and
raises ``build_failed``; the server stays recorded (it exists upstream), and a repeated create for the
service rebuilds it instead of creating another.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from vpsbridge.http.errors import UpstreamRejected
from vpsbridge.platforms.base import Platform as Driver
from vpsbridge.platforms.errors import NotSupported, ServerMissing
from vpsbridge.platforms.models import ServerInfo, ServerRef, TaskHandle
from vpsbridge.services.provisioning.credentials import read_credentials, store_credentials
from vpsbridge.services.provisioning.events import emit
from vpsbridge.services.provisioning.flavours import BuildOutcome, Flavour
from vpsbridge.services.provisioning.lifecycle import DEPLOY, JOB_ATTEMPTS
from vpsbridge.services.provisioning.records import known_external_ids, set_server, set_service
from vpsbridge.store.models import Server, Service, utcnow
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
    POLL_SECONDS,
    deliver_event,
    last_attempt,
    poll_task,
    refresh_record,
    server_ref,
    server_resource,
    service_event,
    upstream_outcome,
    with_driver,
)

#: Pause before looking for a server whose create outcome was unknown (it may still appear).
RESOLVE_PAUSE_SECONDS = 10.0
#: Longest a build may take before the deploy reports it as failed.
BUILD_TIMEOUT_SECONDS = 3600.0


async def fail_deploy(ctx: StepContext, message: str, *, server_state: str = "build_failed") -> Fail:
    """End the deploy: the service is ``failed`` with ``message`` and ``build_failed`` is raised."""
    service_id = int(ctx.payload["service_id"])
    await set_service(
        ctx.app.db, service_id, expect=("provisioning", "unknown"), status="failed", last_error=message
    )
    await set_server(ctx.app.db, int(ctx.payload["server_id"]), state=server_state)
    await ctx.log(message, "error")
    await emit(ctx.app, await service_event(ctx, "build_failed", {"error": message}))
    return Fail(message)


async def retry_or_fail(ctx: StepContext, outcome: Outcome, doing: str) -> Outcome:
    """A transient failure, unless it is the last attempt: then the deploy fails readably."""
    if isinstance(outcome, Retry) and last_attempt(ctx):
        return await fail_deploy(ctx, f"gave up {doing}: {outcome.reason}")
    return outcome


# --- resolve ----------------------------------------------------------------------------------------


async def step_resolve(ctx: StepContext) -> Outcome:
    if ctx.payload.get("mode") != "resolve":
        return Done()
    if not ctx.state.get("resolve_paused"):
        ctx.state["resolve_paused"] = True
        return Wait(RESOLVE_PAUSE_SECONDS, "giving the platform time to show a server it may have created")
    async with ctx.app.db.session() as session:
        service = await session.get(Service, int(ctx.payload["service_id"]))
        if service is None or service.status != "unknown":
            return Fail("the service is no longer waiting for its create to be resolved")
        owner = service.client_id
        known = await known_external_ids(session, int(ctx.payload["platform_id"]))
    hostname = str(ctx.payload.get("hostname") or "")

    async def look(driver: Driver, flavour: Flavour) -> list[ServerRef] | None:
        return await flavour.find_created(driver, owner=owner, hostname=hostname, known=known)

    try:
        found: list[ServerRef] | None = await with_driver(ctx, look)
    except Exception as exc:
        outcome = upstream_outcome(exc, ctx, "looking for the server")
        if outcome is None:
            raise
        if isinstance(outcome, Retry) and last_attempt(ctx):
            return Fail(f"could not ask the platform whether the server exists: {outcome.reason}")
        return outcome
    service_id = int(ctx.payload["service_id"])
    if found is None or len(found) > 1:
        what = "cannot be asked" if found is None else f"shows {len(found)} candidate servers"
        message = f"the create's outcome is still unknown: the platform {what}; an operator must resolve it"
        await set_service(ctx.app.db, service_id, last_error=message)
        await emit(ctx.app, await service_event(ctx, "create_unknown", {"error": message}))
        return Fail(message)
    if not found:
        message = "the platform confirms no server was created; the service can be created again"
        async with ctx.app.db.session() as session:
            await set_service(
                session, service_id, expect=("unknown",), status="failed", last_error=message, server_id=None
            )
            server = await session.get(Server, int(ctx.payload["server_id"]))
            if server is not None and server.external_id is None:
                await session.delete(server)
        await emit(ctx.app, await service_event(ctx, "build_failed", {"error": message}))
        return Fail(message)
    ref = found[0]
    async with ctx.app.db.session() as session:
        await set_server(
            session,
            int(ctx.payload["server_id"]),
            external_id=ref.external_id,
            node=ref.node,
            state="building",
        )
        await set_service(session, service_id, expect=("unknown",), status="provisioning", last_error=None)
    await ctx.log(f"adopted platform server {ref.external_id}, created before the platform answered")
    return Done({"adopted": ref.external_id})


# --- create and build ---------------------------------------------------------------------------------


async def step_await_create(ctx: StepContext) -> Outcome:
    result = await poll_task(ctx, "create_task", "waiting for the platform to create the server")
    if not isinstance(result, TaskHandle):
        return await retry_or_fail(ctx, result, "waiting for the create")
    if result.state == "failed":
        return await fail_deploy(
            ctx, f"the platform failed to create the server: {result.error or 'no reason'}"
        )
    return Done()


async def _build_marker(ctx: StepContext) -> str | None:
    async with ctx.app.db.session() as session:
        service = await session.get(Service, int(ctx.payload["service_id"]))
        marker = (service.lifecycle or {}).get("build_requested") if service is not None else None
    return str(marker) if marker == f"job:{ctx.job_id}" else None


async def step_build(ctx: StepContext) -> Outcome:
    os_template = ctx.payload.get("os_template")
    if not os_template or ctx.state.get("build_task") or ctx.state.get("recover"):
        return Done()
    ref = await server_ref(ctx)
    if ref is None:
        return await fail_deploy(ctx, "the server has no platform id; nothing to build")
    service_id = int(ctx.payload["service_id"])
    if await _build_marker(ctx):
        # A previous run of this step sent the build and died before recording the answer. Look
        # at the server rather than build again (a second build would wipe the first).
        try:
            info: ServerInfo = await with_driver(ctx, lambda d, _f: d.server_info(ref))
        except Exception as exc:
            outcome = upstream_outcome(exc, ctx, "checking an interrupted build")
            if outcome is None:
                raise
            return await retry_or_fail(ctx, outcome, "checking an interrupted build")
        if info.state == "building" or info.os_template:
            ctx.state["recover"] = True
            await ctx.log("a build was already requested by an interrupted run; following it")
            return Done()
        await ctx.log("an interrupted run's build never reached the platform; building now", "warning")
    await set_service(ctx.app.db, service_id, lifecycle={"build_requested": f"job:{ctx.job_id}"})

    async def run(driver: Driver, flavour: Flavour) -> BuildOutcome:
        return await flavour.build(
            driver,
            ref,
            os_template=str(os_template),
            ssh_keys=list(ctx.payload.get("ssh_keys") or []),
            hostname=ctx.payload.get("hostname"),
            name=ctx.payload.get("name"),
        )

    try:
        built: BuildOutcome = await with_driver(ctx, run)
    except (UpstreamRejected, NotSupported) as exc:
        return await fail_deploy(ctx, f"the platform refused the build: {exc}")
    except ServerMissing:
        return await fail_deploy(
            ctx, "the platform no longer has the server; nothing to build", server_state="gone"
        )
    except Exception as exc:
        outcome = upstream_outcome(exc, ctx, "requesting the build")
        if outcome is None:
            raise
        if not isinstance(outcome, Retry):
            # Locked: the platform refused to start, so nothing was sent; clear the marker.
            await set_service(ctx.app.db, service_id, lifecycle={"build_requested": None})
        return await retry_or_fail(ctx, outcome, "requesting the build")
    if built.password:
        await store_credentials(ctx.app, int(ctx.payload["server_id"]), built.username, built.password)
        ctx.state["password_stored"] = True
    ctx.state["username"] = built.username
    ctx.state["build_task"] = built.task.model_dump(mode="json")
    ctx.state["build_deadline"] = (
        utcnow() + dt.timedelta(seconds=ctx.app.settings.scaled(BUILD_TIMEOUT_SECONDS))
    ).isoformat()
    return Done({"build_task": built.task.id})


def _past_deadline(ctx: StepContext) -> bool:
    deadline = ctx.state.get("build_deadline")
    return bool(deadline) and utcnow() > dt.datetime.fromisoformat(str(deadline))


async def step_await_build(ctx: StepContext) -> Outcome:
    if not ctx.payload.get("os_template"):
        return Done()
    if ctx.state.get("recover") and not ctx.state.get("build_task"):
        ref = await server_ref(ctx)
        if ref is None:
            return await fail_deploy(ctx, "the server has no platform id")
        try:
            info: ServerInfo = await with_driver(ctx, lambda d, _f: d.server_info(ref))
        except Exception as exc:
            outcome = upstream_outcome(exc, ctx, "waiting for the build")
            if outcome is None:
                raise
            return await retry_or_fail(ctx, outcome, "waiting for the build")
        if info.state == "building":
            return Wait(POLL_SECONDS, "the build is running")
        return Done()
    if _past_deadline(ctx):
        return await fail_deploy(ctx, "the build did not finish in time; check the server on the platform")
    result = await poll_task(ctx, "build_task", "building")
    if not isinstance(result, TaskHandle):
        return await retry_or_fail(ctx, result, "waiting for the build")
    if result.state == "failed":
        return await fail_deploy(ctx, f"the build failed: {result.error or 'the platform gave no reason'}")
    return Done()


async def step_credentials(ctx: StepContext) -> Outcome:
    if not ctx.payload.get("os_template"):
        return Done()
    server_id = int(ctx.payload["server_id"])
    if ctx.state.get("password_stored") and await read_credentials(ctx.app, server_id) is not None:
        return Done()
    ref = await server_ref(ctx)
    if ref is None:
        return Done()
    try:
        reset = await with_driver(ctx, lambda d, f: d.reset_password(ref, f.chosen_password()))
    except NotSupported:
        await ctx.log("the platform cannot reset passwords; no login is stored", "warning")
        return Done()
    except UpstreamRejected as exc:
        await ctx.log(f"the platform refused a password reset ({exc}); no login is stored", "warning")
        return Done()
    except Exception as exc:
        outcome = upstream_outcome(exc, ctx, "resetting the password")
        if outcome is None:
            raise
        return await retry_or_fail(ctx, outcome, "resetting the password")
    await store_credentials(ctx.app, server_id, reset.username, reset.password)
    ctx.state["password_stored"] = True
    ctx.state["username"] = reset.username
    return Done({"password_reset": True})


# --- sync and notify ------------------------------------------------------------------------------------


async def step_sync(ctx: StepContext) -> Outcome:
    ref = await server_ref(ctx)
    if ref is None:
        return await fail_deploy(ctx, "the server has no platform id")

    async def read(driver: Driver, flavour: Flavour) -> tuple[ServerInfo, Flavour]:
        # A live read: some platforms (VirtFusion) know the power state only from the hypervisor,
        # and a new server's record should not start as "unknown".
        return await driver.server_info(ref, live=True), flavour

    try:
        info, flavour = await with_driver(ctx, read)
    except ServerMissing:
        return await fail_deploy(ctx, "the platform no longer has the server", server_state="gone")
    except Exception as exc:
        outcome = upstream_outcome(exc, ctx, "reading the new server")
        if outcome is None:
            raise
        return await retry_or_fail(ctx, outcome, "reading the new server")
    await refresh_record(ctx, info)
    if not info.ipv6 and flavour.expects_ipv6(int(ctx.payload.get("ipv6") or 0)):
        first = ctx.state.setdefault("ipv6_wait_started", utcnow().isoformat())
        waited = (utcnow() - dt.datetime.fromisoformat(str(first))).total_seconds()
        if waited < ctx.app.settings.scaled(flavour.ipv6_grace_seconds):
            return Wait(POLL_SECONDS, "waiting for IPv6 addresses to appear")
        await ctx.log("no IPv6 address appeared; going on without it")
    service_id = int(ctx.payload["service_id"])
    await set_service(
        ctx.app.db,
        service_id,
        expect=("provisioning",),
        status="active",
        last_error=None,
        lifecycle={"provisioned_at": utcnow().isoformat(), "build_requested": None},
    )
    ctx.state["ipv4"], ctx.state["ipv6"], ctx.state["hostname"] = (
        list(info.ipv4),
        list(info.ipv6),
        info.hostname,
    )
    return Done({"ipv4": list(info.ipv4), "ipv6": list(info.ipv6)})


async def step_dns(ctx: StepContext) -> Outcome:
    """Queue the forward records and PTRs of the new addresses; DNS never holds up or fails a deploy."""
    from vpsbridge.services.dns.hooks import on_server_provisioned

    try:
        job = await on_server_provisioned(ctx.app, int(ctx.payload["server_id"]))
    except Exception as exc:
        await ctx.log(f"DNS records not queued ({type(exc).__name__}: {exc}); the deploy goes on", "warning")
        return Done({"dns_queued": False})
    return Done({"dns_job": job})


async def step_notify(ctx: StepContext) -> Outcome:
    details: dict[str, Any] = {
        "ipv4": ctx.state.get("ipv4") or [],
        "ipv6": ctx.state.get("ipv6") or [],
        "hostname": ctx.state.get("hostname"),
        "username": ctx.state.get("username"),
        "has_password": bool(ctx.state.get("password_stored")),
    }
    return await deliver_event(ctx, "provisioned", details)


DEPLOY_WORKFLOW = register_workflow(
    Workflow(
        name=DEPLOY,
        steps=(
            Step("resolve", step_resolve),
            Step("await_create", step_await_create),
            Step("build", step_build),
            Step("await_build", step_await_build),
            Step("credentials", step_credentials),
            Step("sync", step_sync),
            Step("dns", step_dns),
            Step("notify", step_notify),
        ),
        resource_key=server_resource,
        max_attempts=JOB_ATTEMPTS[DEPLOY],
    )
)
