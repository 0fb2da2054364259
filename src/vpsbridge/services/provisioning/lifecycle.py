"""The lifecycle of a billing service: create, suspend, unsuspend, terminate, change package, ...

These functions are what the billing bridge, the JSON API and the CLI call. Each answers within
seconds: it records what was asked, gets the platform to *accept* the change, and leaves anything
slow (the OS build, waiting for tasks, the terminate grace period) to a durable job
(``service.deploy``, ``service.terminate``, ``service.change_package``, ``service.sync``) whose
resource key ``server:<id>`` keeps two jobs from working on one server at the same time.

Rules that hold everywhere:

* **Create is idempotent per billing service.** The service row (unique billing service id) is
  claimed before the platform is called; a repeated or concurrent create returns the recorded
  service (or waits briefly for the in-flight one) and never asks the platform for a second server.
* **Unknown is never treated as an answer.** When the platform does not answer a create, the service
  is recorded as ``unknown``; nothing is retried blindly and nothing is released on a timeout. An
  operator confirms with :func:`resolve_unknown_create` (or the flavour finds the server again).
* **"Server not found" on suspend/unsuspend/terminate is success:** the server is marked gone.
* Every failure is a :class:`~vpsbridge.services.errors.ServiceError` with a readable sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vpsbridge.http.errors import (
    UpstreamAuthError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from vpsbridge.http.errors import (
    UpstreamError as HttpUpstreamError,
)
from vpsbridge.jobs.queue import cancel as cancel_job
from vpsbridge.jobs.queue import enqueue
from vpsbridge.platforms.errors import NotSupported, ServerLocked
from vpsbridge.platforms.models import PowerAction, ServerRef, TaskHandle
from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Conflict, Invalid, NotFound, ServiceError, UpstreamError
from vpsbridge.services.inputs import parse_input
from vpsbridge.services.lookup import find_by_ref
from vpsbridge.services.provisioning.credentials import read_credentials, store_credentials
from vpsbridge.services.provisioning.drivers import PlatformConfig, open_driver, platform_config
from vpsbridge.services.provisioning.events import ServiceEvent, emit
from vpsbridge.services.provisioning.flavours import Flavour, ProductView, SpecRequest, flavour_for
from vpsbridge.services.provisioning.records import (
    ServiceRef,
    addresses,
    find_service,
    service_out,
    set_server,
    set_service,
)
from vpsbridge.services.provisioning.schemas import (
    ActionOut,
    ChangePackageRequest,
    CredentialsOut,
    ServiceCreate,
    ServiceOut,
)
from vpsbridge.store.models import Job, Product, Server, Service, utcnow
from vpsbridge.store.models import Platform as PlatformRow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

LABEL = "service"

#: Workflow names (registered by ``vpsbridge.workflows.{deploy,terminate,change_package,server_sync}``).
DEPLOY = "service.deploy"
TERMINATE = "service.terminate"
CHANGE_PACKAGE = "service.change_package"
SYNC = "service.sync"

#: A create still ``pending`` after this long died mid-call: its outcome is unknown.
CREATE_STALE_SECONDS = 300.0
#: How long a repeated create waits for the in-flight one before answering "in progress".
PEER_WAIT_SECONDS = 20.0

#: Statuses in which a repeated create simply returns the service.
_CREATED = ("provisioning", "active", "suspended")
#: Statuses from which a new create may start.
_RECREATE = ("failed", "terminated")

JOB_ATTEMPTS = {DEPLOY: 12, TERMINATE: 10, CHANGE_PACKAGE: 8, SYNC: 6}


def resource_key(server_id: int) -> str:
    return f"server:{server_id}"


async def enqueue_job(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    delay_seconds: float = 0.0,
) -> int:
    """Queue a lifecycle job in the caller's transaction (so the record and its job commit together)."""
    run_at = utcnow() + timedelta(seconds=delay_seconds) if delay_seconds > 0 else None
    return await enqueue(
        session,
        kind,
        payload,
        dedupe_key=dedupe_key,
        resource_key=resource_key(int(payload["server_id"])),
        max_attempts=JOB_ATTEMPTS[kind],
        run_at=run_at,
    )


# --- reading ---------------------------------------------------------------------------------------


async def get_service(ctx: AppContext, ref: ServiceRef) -> ServiceOut:
    """One service by id or ``billing:<billing service id>``."""
    async with ctx.db.session() as session:
        return await service_out(session, await find_service(session, ref))


async def list_services(
    ctx: AppContext,
    *,
    status: str | None = None,
    client_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ServiceOut]:
    """Newest first, optionally filtered by status and billing client."""
    query = select(Service).order_by(Service.id.desc()).limit(limit).offset(offset)
    if status is not None:
        query = query.where(Service.status == status)
    if client_id is not None:
        query = query.where(Service.client_id == client_id)
    async with ctx.db.session() as session:
        rows = (await session.execute(query)).scalars().all()
        return [await service_out(session, row) for row in rows]


async def service_credentials(ctx: AppContext, ref: ServiceRef) -> CredentialsOut:
    """The server's login for the billing hand-off (welcome e-mail) or the operator."""
    async with ctx.db.session() as session:
        service = await find_service(session, ref)
        server = await session.get(Server, service.server_id) if service.server_id else None
        if server is None:
            raise NotFound(f"service {service.id} has no server yet")
        v4, v6 = addresses(server)
        hostname, server_id = server.hostname, server.id
    stored = await read_credentials(ctx, server_id)
    if stored is None:
        raise NotFound(f"service {service.id} has no stored login yet (the build may still be running)")
    return CredentialsOut(
        service_id=service.id,
        username=str(stored["username"]),
        password=str(stored["password"]),
        ipv4=v4,
        ipv6=v6,
        hostname=hostname,
        updated_at=None,
    )


# --- create ----------------------------------------------------------------------------------------


def _product_view(row: Product) -> ProductView:
    return ProductView(
        id=row.id,
        name=row.name,
        platform_id=row.platform_id,
        placement=dict(row.placement or {}),
        plan=dict(row.plan or {}),
        settings=dict(row.settings or {}),
    )


async def _find_product(session: AsyncSession, ref: int | str) -> Product:
    text = str(ref).strip()
    if text.startswith("billing:"):
        row = (
            await session.execute(
                select(Product).where(Product.billing_product_id == text[len("billing:") :])
            )
        ).scalar_one_or_none()
        if row is None:
            raise Invalid(f"no product with billing product id {text[len('billing:') :]!r}", field="product")
        return row
    try:
        return await find_by_ref(session, Product, ref, label="product")
    except NotFound as exc:
        raise Invalid(str(exc), field="product") from None


async def _product_and_platform(ctx: AppContext, ref: int | str) -> tuple[ProductView, PlatformConfig]:
    async with ctx.db.session() as session:
        row = await _find_product(session, ref)
        if not row.enabled:
            raise Invalid(f"product {row.name!r} is disabled", field="product")
        product = _product_view(row)
    return product, await platform_config(ctx, product.platform_id)


def _spec_request(req: ServiceCreate, hostname: str) -> SpecRequest:
    return SpecRequest(
        client_id=req.client_id,
        options=dict(req.options),
        hostname=hostname,
        name=req.name,
        os_template=req.os_template,
        ssh_keys=tuple(req.ssh_keys),
        client_name=req.client.name,
        client_email=req.client.email,
    )


@dataclass(frozen=True)
class _Claim:
    service_id: int
    server_id: int
    #: The server already exists upstream (a failed build being retried): build, do not create.
    rebuild: bool = False


async def create_service(
    ctx: AppContext, data: ServiceCreate | Mapping[str, Any], actor: Actor
) -> ServiceOut:
    """Record the service, have the platform accept the create, queue the build; idempotent.

    Returns the service as recorded (``provisioning`` once the platform accepted). A repeated call
    with the same ``billing_service_id`` returns the existing service without calling the platform.
    Raises :class:`Invalid` (unknown options, bad product), :class:`Conflict` (being created,
    unknown outcome, terminating) or :class:`UpstreamError` (the platform refused or did not answer;
    the message says which, and the service records it).
    """
    req = parse_input(ServiceCreate, data)
    product, platform = await _product_and_platform(ctx, req.product)
    flavour = flavour_for(platform.type)
    delegated = await flavour.create_service(ctx, req, actor)
    if delegated is not None:
        return delegated
    hostname = req.hostname or f"vps-{secrets.token_hex(4)}"
    spec = flavour.server_spec(product, platform, _spec_request(req, hostname))

    claim = await _claim(ctx, req, product, platform, hostname, actor)
    if isinstance(claim, ServiceOut):
        return claim
    payload: dict[str, Any] = {
        "service_id": claim.service_id,
        "server_id": claim.server_id,
        "platform_id": platform.id,
        "os_template": spec.os_template,
        "ssh_keys": list(spec.ssh_keys),
        "hostname": spec.hostname,
        "name": spec.name,
        "ipv6": spec.ipv6,
        "mode": "build",
    }
    if claim.rebuild:
        async with ctx.db.session() as session:
            job_id = await enqueue_job(
                session, DEPLOY, payload, dedupe_key=f"deploy:service:{claim.service_id}"
            )
            await set_service(
                session,
                claim.service_id,
                status="provisioning",
                last_error=None,
                lifecycle={"job_id": job_id},
            )
            return await service_out(session, await find_service(session, claim.service_id))

    try:
        async with open_driver(ctx, platform.id) as (driver, _config):
            handle = await flavour.create(driver, spec)
            v4, v6 = await flavour.initial_addresses(driver, handle)
    except (UpstreamRejected, UpstreamNotFound, NotSupported) as exc:
        # A definite refusal: nothing exists upstream. The service may be created again later.
        message = f"platform {platform.name!r} refused to create the server: {exc}"
        await _create_refused(ctx, claim, message)
        raise UpstreamError(message, details={"service_id": claim.service_id}) from exc
    except Exception as exc:
        # Timeout, 5xx, garbage, a bug: we do not know whether a server now exists.
        message = (
            f"platform {platform.name!r} did not confirm the create ({_describe(exc)}); the server may or "
            "may not exist. The service is recorded as 'unknown' and is not created again until this "
            "is resolved (vpsbridge service resolve)."
        )
        await _create_unknown(ctx, claim, payload, message, flavour)
        raise UpstreamError(message, details={"service_id": claim.service_id, "status": "unknown"}) from exc

    assert handle.server is not None, "a driver's create handle names the server"
    payload["create_task"] = _task_payload(handle)
    async with ctx.db.session() as session:
        await set_server(
            session,
            claim.server_id,
            external_id=handle.server.external_id,
            node=handle.server.node,
            state="building" if spec.os_template else "created",
            last_known={"ipv4": v4, "ipv6": v6},
        )
        job_id = await enqueue_job(session, DEPLOY, payload, dedupe_key=f"deploy:service:{claim.service_id}")
        await set_service(
            session,
            claim.service_id,
            status="provisioning",
            last_error=None,
            lifecycle={"job_id": job_id, "accepted_at": utcnow().isoformat()},
        )
        await record(
            session,
            actor,
            "service.create",
            LABEL,
            claim.service_id,
            {"external_id": handle.server.external_id, "platform": platform.name, "job_id": job_id},
        )
        return await service_out(session, await find_service(session, claim.service_id))


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _task_payload(handle: TaskHandle) -> dict[str, Any]:
    """A task handle for job state: without bulky or secret results (server objects, passwords)."""
    result = {k: v for k, v in handle.result.items() if k not in ("server_object", "root_password")}
    return handle.model_copy(update={"result": result}).model_dump(mode="json")


async def _claim(
    ctx: AppContext,
    req: ServiceCreate,
    product: ProductView,
    platform: PlatformConfig,
    hostname: str,
    actor: Actor,
) -> _Claim | ServiceOut:
    """Take the right to create for this billing service, or return what already exists.

    The unique billing service id decides between concurrent callers: exactly one inserts (or moves
    a failed/terminated service back to ``pending``); the others see that row and wait for it.
    """
    deadline = time.monotonic() + PEER_WAIT_SECONDS
    while True:
        try:
            async with ctx.db.session() as session:
                result = await _claim_once(session, req, product, platform, hostname, actor)
                if result is not None:
                    return result
        except IntegrityError:
            pass  # another caller inserted the same billing service id first; look again
        if time.monotonic() >= deadline:
            raise Conflict(
                f"billing service {req.billing_service_id} is being created by another request; "
                "try again in a minute"
            )
        await asyncio.sleep(0.2)


async def _claim_once(
    session: AsyncSession,
    req: ServiceCreate,
    product: ProductView,
    platform: PlatformConfig,
    hostname: str,
    actor: Actor,
) -> _Claim | ServiceOut | None:
    """One attempt at :func:`_claim` inside a transaction; ``None`` = someone else is creating it."""
    existing: Service | None = None
    if req.billing_service_id is not None:
        existing = (
            await session.execute(
                select(Service).where(Service.billing_service_id == req.billing_service_id).with_for_update()
            )
        ).scalar_one_or_none()
    now = utcnow()
    lifecycle = {"claimed_at": now.isoformat(), "request": _request_record(req, hostname)}
    if existing is None:
        service = Service(
            billing_service_id=req.billing_service_id,
            client_id=req.client_id,
            product_id=product.id,
            status="pending",
            options=dict(req.options),
            lifecycle=lifecycle,
        )
        server = Server(platform_id=platform.id, hostname=hostname, name=req.name, state="creating")
        session.add_all([service, server])
        await session.flush()
        service.server_id = server.id
        await record(
            session,
            actor,
            "service.claim",
            LABEL,
            service.id,
            {"billing_service_id": req.billing_service_id, "product": product.name},
        )
        return _Claim(service.id, server.id)

    status = existing.status
    if status in _CREATED:
        return await service_out(session, existing)
    if status == "pending":
        claimed = str((existing.lifecycle or {}).get("claimed_at") or "")
        age = (now - _parse(claimed)).total_seconds() if claimed else CREATE_STALE_SECONDS
        if age < CREATE_STALE_SECONDS:
            return None
        # The process that claimed it died during the platform call: the outcome is unknown.
        existing.status = "unknown"
        existing.last_error = "the create was interrupted while the platform was being asked; outcome unknown"
        if existing.server_id:
            await set_server(session, existing.server_id, state="create_unknown")
        await session.flush()
        raise Conflict(_unknown_message(existing))
    if status == "unknown":
        raise Conflict(_unknown_message(existing))
    if status in ("terminating", "error_terminate"):
        raise Conflict(f"service {existing.id} is being terminated ({status}); it cannot be created now")
    if status not in _RECREATE:
        raise Conflict(f"service {existing.id} is {status}; it cannot be created now")

    old = await session.get(Server, existing.server_id) if existing.server_id else None
    existing.product_id = product.id
    existing.client_id = req.client_id
    existing.options = dict(req.options)
    existing.last_error = None
    existing.lifecycle = {**(existing.lifecycle or {}), **lifecycle, "warnings": []}
    rebuild = bool(status == "failed" and old is not None and old.external_id and old.state != "gone")
    if rebuild and old is not None:
        existing.status = "provisioning"
        old.state = "building"
        server_id = old.id
    else:
        existing.status = "pending"
        fresh = Server(platform_id=platform.id, hostname=hostname, name=req.name, state="creating")
        session.add(fresh)
        await session.flush()
        existing.server_id = fresh.id
        server_id = fresh.id
    await record(
        session,
        actor,
        "service.claim",
        LABEL,
        existing.id,
        {"billing_service_id": req.billing_service_id, "from": status, "rebuild": rebuild},
    )
    return _Claim(existing.id, server_id, rebuild=rebuild)


def _request_record(req: ServiceCreate, hostname: str) -> dict[str, Any]:
    return {
        "os_template": req.os_template,
        "hostname": hostname,
        "name": req.name,
        "ssh_keys": list(req.ssh_keys),
        "client": req.client.model_dump(),
    }


def _parse(value: str) -> Any:
    import datetime as dt

    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _unknown_message(service: Service) -> str:
    return (
        f"service {service.id}: the platform never confirmed whether the server was created "
        f"({service.last_error or 'no answer'}). Check the platform, then run "
        f"'vpsbridge service resolve {service.id} --external-id <id>' if it exists or "
        f"'vpsbridge service resolve {service.id} --not-created' if it does not."
    )


async def _create_refused(ctx: AppContext, claim: _Claim, message: str) -> None:
    async with ctx.db.session() as session:
        server = await session.get(Server, claim.server_id)
        await set_service(session, claim.service_id, status="failed", last_error=message, server_id=None)
        if server is not None and server.external_id is None:
            await session.delete(server)


async def _create_unknown(
    ctx: AppContext, claim: _Claim, payload: dict[str, Any], message: str, flavour: Flavour
) -> None:
    async with ctx.db.session() as session:
        await set_server(session, claim.server_id, state="create_unknown")
        await set_service(session, claim.service_id, status="unknown", last_error=message)
        if type(flavour).find_created is not Flavour.find_created:
            # This platform can list a client's servers: a job looks for the server after a pause.
            job_id = await enqueue_job(
                session,
                DEPLOY,
                {**payload, "mode": "resolve"},
                dedupe_key=f"deploy:service:{claim.service_id}",
            )
            await set_service(session, claim.service_id, lifecycle={"job_id": job_id})


async def resolve_unknown_create(
    ctx: AppContext, ref: ServiceRef, actor: Actor, *, external_id: str | None
) -> ServiceOut:
    """An operator's answer to an ``unknown`` create.

    ``external_id`` = the server exists with that platform id: it is adopted and built. ``None`` =
    the operator checked that no server was created: the service becomes ``failed`` and may be
    created again.
    """
    async with ctx.db.session() as session:
        service = await find_service(session, ref, lock=True)
        if service.status != "unknown":
            raise Conflict(f"service {service.id} is {service.status}, not unknown; nothing to resolve")
        server = await session.get(Server, service.server_id) if service.server_id else None
        if server is None:
            raise Conflict(f"service {service.id} has no server record to resolve")
        await _cancel_jobs(session, service, actor)
        if external_id is None:
            service.status = "failed"
            service.last_error = "an operator confirmed that no server was created"
            service.server_id = None
            await session.delete(server)
            await record(session, actor, "service.resolve", LABEL, service.id, {"created": False})
            await session.flush()
            return await service_out(session, service)
        clash = (
            await session.execute(
                select(Server.id).where(
                    Server.platform_id == server.platform_id, Server.external_id == external_id
                )
            )
        ).first()
        if clash is not None:
            raise Conflict(f"platform server {external_id} is already recorded (server {clash[0]})")
        server.external_id = external_id
        server.state = "building"
        request = dict((service.lifecycle or {}).get("request") or {})
        payload = {
            "service_id": service.id,
            "server_id": server.id,
            "platform_id": server.platform_id,
            "os_template": request.get("os_template"),
            "ssh_keys": request.get("ssh_keys") or [],
            "hostname": request.get("hostname") or server.hostname,
            "name": request.get("name"),
            "ipv6": 0,
            "mode": "build",
        }
        job_id = await enqueue_job(session, DEPLOY, payload, dedupe_key=f"deploy:service:{service.id}")
        service.status = "provisioning"
        service.last_error = None
        service.lifecycle = {**(service.lifecycle or {}), "job_id": job_id}
        await record(
            session,
            actor,
            "service.resolve",
            LABEL,
            service.id,
            {"created": True, "external_id": external_id},
        )
        await session.flush()
        return await service_out(session, service)


async def _cancel_jobs(session: AsyncSession, service: Service, actor: Actor) -> None:
    """Cancel the service's unfinished lifecycle job (a deploy a terminate supersedes)."""
    job_id = (service.lifecycle or {}).get("job_id")
    if not job_id:
        return
    job = await session.get(Job, int(job_id))
    if job is None or job.status in ("succeeded", "failed", "cancelled"):
        return
    from vpsbridge.jobs.queue import JobError

    with contextlib.suppress(JobError):
        await cancel_job(session, int(job_id), actor)


# --- actions on an existing server -----------------------------------------------------------------


async def _service_flavour(ctx: AppContext, ref: ServiceRef) -> Flavour:
    """The flavour of the platform a service lives on (its server's, else its product's)."""
    async with ctx.db.session() as session:
        service = await find_service(session, ref)
        platform_id: int | None = None
        if service.server_id:
            server = await session.get(Server, service.server_id)
            platform_id = server.platform_id if server is not None else None
        if platform_id is None and service.product_id:
            product = await session.get(Product, service.product_id)
            platform_id = product.platform_id if product is not None else None
        config = await session.get(PlatformRow, platform_id) if platform_id is not None else None
        return flavour_for(config.type if config is not None else "*")


@dataclass(frozen=True)
class _Target:
    service_id: int
    server_id: int
    platform_id: int
    status: str
    ref: ServerRef
    flavour: Flavour


async def _target(ctx: AppContext, ref: ServiceRef, action: str, allowed: tuple[str, ...]) -> _Target:
    async with ctx.db.session() as session:
        service = await find_service(session, ref)
        server = await session.get(Server, service.server_id) if service.server_id else None
        if service.status not in allowed:
            raise Conflict(
                f"cannot {action} service {service.id}: it is {service.status} "
                f"(allowed when {', '.join(allowed)})"
            )
        if server is None or not server.external_id:
            raise Conflict(f"cannot {action} service {service.id}: it has no server on the platform yet")
        config = await session.get(PlatformRow, server.platform_id)
        type_name = config.type if config is not None else "*"
        return _Target(
            service_id=service.id,
            server_id=server.id,
            platform_id=server.platform_id,
            status=service.status,
            ref=ServerRef(external_id=server.external_id, node=server.node),
            flavour=flavour_for(type_name),
        )


def _translate(exc: Exception, action: str, target: _Target) -> ServiceError:
    """A platform failure as a sentence for billing and operators (never a stack trace)."""
    where = f"service {target.service_id} (platform server {target.ref.external_id})"
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, ServerLocked):
        return Conflict(
            f"cannot {action} {where} now: the platform is busy with another task on it; try again shortly"
        )
    if isinstance(exc, NotSupported):
        return Invalid(f"cannot {action} {where}: {exc}")
    if isinstance(exc, UpstreamAuthError):
        return UpstreamError(f"cannot {action} {where}: the platform refused our credentials ({exc})")
    if isinstance(exc, UpstreamRejected):
        return UpstreamError(f"the platform refused to {action} {where}: {exc}")
    if isinstance(exc, UpstreamUnavailable):
        return UpstreamError(
            f"the platform did not answer while asked to {action} {where} ({exc}); "
            "its state is unknown, nothing was recorded as changed - retry"
        )
    if isinstance(exc, HttpUpstreamError):
        return UpstreamError(f"cannot {action} {where}: {exc}")
    return UpstreamError(f"cannot {action} {where}: unexpected {type(exc).__name__}: {exc}")


async def _queue_sync(
    session: AsyncSession,
    target: _Target,
    task: TaskHandle | None,
    *,
    event: str | None = None,
    kind: str = SYNC,
    extra: dict[str, Any] | None = None,
) -> int | None:
    """Follow up on an accepted change in a job: wait for its task, refresh the server record."""
    payload: dict[str, Any]
    if task is not None and task.finished and event is None and kind == SYNC:
        payload = {
            "service_id": target.service_id,
            "server_id": target.server_id,
            "platform_id": target.platform_id,
        }
        return await enqueue_job(session, SYNC, payload, dedupe_key=f"sync:server:{target.server_id}")
    payload = {
        "service_id": target.service_id,
        "server_id": target.server_id,
        "platform_id": target.platform_id,
        "task": _task_payload(task) if task is not None else None,
        "event": event,
        **(extra or {}),
    }
    return await enqueue_job(session, kind, payload)


async def suspend_service(
    ctx: AppContext, ref: ServiceRef, actor: Actor, *, reason: str | None = None
) -> ActionOut:
    """Suspend on the platform; already suspended = ``unchanged``; a server the platform no longer has
    counts as suspended (the server is marked gone)."""
    async with ctx.db.session() as session:
        service = await find_service(session, ref)
        if service.status == "suspended":
            return ActionOut(
                service=await service_out(session, service), action="suspend", outcome="unchanged"
            )
    delegated = await (await _service_flavour(ctx, ref)).service_action(ctx, ref, "suspend", actor)
    if delegated is not None:
        return delegated
    target = await _target(ctx, ref, "suspend", ("active", "provisioning"))
    gone = False
    try:
        async with open_driver(ctx, target.platform_id) as (driver, _):
            task = await driver.suspend(target.ref)
        gone = bool(task.result.get("server_missing"))
    except UpstreamNotFound:
        task, gone = None, True
    except Exception as exc:
        raise _translate(exc, "suspend", target) from exc
    return await _after_toggle(ctx, target, actor, "suspend", "suspended", task, gone, reason)


async def unsuspend_service(ctx: AppContext, ref: ServiceRef, actor: Actor) -> ActionOut:
    """Unsuspend on the platform; already active = ``unchanged``."""
    async with ctx.db.session() as session:
        service = await find_service(session, ref)
        if service.status == "active":
            return ActionOut(
                service=await service_out(session, service), action="unsuspend", outcome="unchanged"
            )
    delegated = await (await _service_flavour(ctx, ref)).service_action(ctx, ref, "unsuspend", actor)
    if delegated is not None:
        return delegated
    target = await _target(ctx, ref, "unsuspend", ("suspended",))
    gone = False
    try:
        async with open_driver(ctx, target.platform_id) as (driver, _):
            task = await driver.unsuspend(target.ref)
        gone = bool(task.result.get("server_missing"))
    except UpstreamNotFound:
        task, gone = None, True
    except Exception as exc:
        raise _translate(exc, "unsuspend", target) from exc
    return await _after_toggle(ctx, target, actor, "unsuspend", "active", task, gone, None)


async def _after_toggle(
    ctx: AppContext,
    target: _Target,
    actor: Actor,
    action: str,
    status: str,
    task: TaskHandle | None,
    gone: bool,
    reason: str | None,
) -> ActionOut:
    async with ctx.db.session() as session:
        message = ""
        job_id: int | None = None
        if gone:
            message = "the platform no longer has this server; it is marked gone"
            await set_server(session, target.server_id, state="gone")
            await set_service(session, target.service_id, status=status, last_error=message)
        else:
            await set_service(
                session,
                target.service_id,
                status=status,
                last_error=None,
                lifecycle={"suspend_reason": reason} if reason else None,
            )
            job_id = await _queue_sync(session, target, task)
        await record(session, actor, f"service.{action}", LABEL, target.service_id, {"gone": gone})
        out = await service_out(session, await find_service(session, target.service_id))
    return ActionOut(service=out, action=action, outcome="done", job_id=job_id, message=message)


async def terminate_service(
    ctx: AppContext, ref: ServiceRef, actor: Actor, *, delay_seconds: float | None = None
) -> ActionOut:
    """Queue the termination: the client loses access at once, the server is deleted after the delay.

    ``delay_seconds`` defaults to the product setting ``terminate_delay_seconds`` (else 0). Billing
    gets ``queued`` at once; the ``terminated`` (or ``terminate_failed``) event reports the end.
    A repeated call returns the queued termination unchanged.
    """
    flavour = await _service_flavour(ctx, ref)
    delegated = await flavour.terminate_service(ctx, ref, actor, delay_seconds=delay_seconds)
    if delegated is not None:
        return delegated
    async with ctx.db.session() as session:
        service = await find_service(session, ref, lock=True)
        if service.status in ("terminated", "terminating"):
            return ActionOut(
                service=await service_out(session, service),
                action="terminate",
                outcome="unchanged",
                job_id=(service.lifecycle or {}).get("job_id"),
            )
        server = await session.get(Server, service.server_id) if service.server_id else None
        if service.status in ("pending", "unknown"):
            raise Conflict(
                f"cannot terminate service {service.id} while its create is {service.status}; "
                + ("resolve it first" if service.status == "unknown" else "try again in a minute")
            )
        if server is None or not server.external_id or server.state == "gone":
            # Nothing exists upstream (create refused, or the platform lost it): done at once.
            service.status = "terminated"
            service.last_error = None
            await record(session, actor, "service.terminate", LABEL, service.id, {"upstream": False})
            await session.flush()
            return ActionOut(
                service=await service_out(session, service),
                action="terminate",
                outcome="done",
                message="no server exists on the platform; the service is terminated",
            )
        if delay_seconds is None:
            product = await session.get(Product, service.product_id) if service.product_id else None
            delay_seconds = (
                float((product.settings or {}).get("terminate_delay_seconds", 0)) if product else 0.0
            )
        if delay_seconds < 0:
            raise Invalid("delay_seconds cannot be negative", field="delay_seconds")
        await _cancel_jobs(session, service, actor)
        not_before = utcnow() + timedelta(seconds=ctx.settings.scaled(delay_seconds))
        payload = {
            "service_id": service.id,
            "server_id": server.id,
            "platform_id": server.platform_id,
            "not_before": not_before.isoformat(),
            "previous_status": service.status,
        }
        job_id = await enqueue_job(session, TERMINATE, payload, dedupe_key=f"terminate:service:{service.id}")
        service.status = "terminating"
        service.last_error = None
        service.lifecycle = {
            **(service.lifecycle or {}),
            "job_id": job_id,
            "terminate_at": not_before.isoformat(),
        }
        await record(
            session,
            actor,
            "service.terminate",
            LABEL,
            service.id,
            {"delay_seconds": delay_seconds, "job_id": job_id},
        )
        await session.flush()
        out = await service_out(session, service)
    return ActionOut(
        service=out,
        action="terminate",
        outcome="queued",
        job_id=job_id,
        message=f"terminates after {delay_seconds:g}s" if delay_seconds else "terminating now",
    )


async def change_package(
    ctx: AppContext, ref: ServiceRef, data: ChangePackageRequest | Mapping[str, Any], actor: Actor
) -> ActionOut:
    """Move the server to another product and/or options; the platform's warnings come back as ``warnings``.

    The new product must be on the same platform (moving between platforms is a migration, not a
    package change). Unknown options are refused before the platform is called.
    """
    req = parse_input(ChangePackageRequest, data)
    delegated = await (await _service_flavour(ctx, ref)).change_package(ctx, ref, req, actor)
    if delegated is not None:
        return delegated
    target = await _target(ctx, ref, "change the package of", ("active", "suspended"))
    async with ctx.db.session() as session:
        service = await find_service(session, target.service_id)
        product_ref: int | str | None = req.product if req.product is not None else service.product_id
        if product_ref is None:
            raise Invalid("the service has no product; give one", field="product")
        options = dict(req.options if req.options is not None else (service.options or {}))
        request = dict((service.lifecycle or {}).get("request") or {})
        server = await session.get(Server, target.server_id)
        hostname = (server.hostname if server else None) or request.get("hostname") or "server"
        client_id = service.client_id
    product, platform = await _product_and_platform(ctx, product_ref)
    if product.platform_id != target.platform_id:
        raise Invalid(
            f"product {product.name!r} is on another platform; a package change cannot move a server",
            field="product",
        )
    spec = target.flavour.server_spec(
        product,
        platform,
        SpecRequest(
            client_id=client_id,
            options=options,
            hostname=hostname,
            client_name=str((request.get("client") or {}).get("name") or ""),
            client_email=str((request.get("client") or {}).get("email") or ""),
        ),
    )
    try:
        async with open_driver(ctx, target.platform_id) as (driver, _):
            task = await driver.change_package(target.ref, spec)
    except Exception as exc:
        raise _translate(exc, "change the package of", target) from exc
    warnings = [str(w) for w in (task.result.get("warnings") or [])]
    async with ctx.db.session() as session:
        job_id = await _queue_sync(
            session,
            target,
            task,
            event="package_changed",
            kind=CHANGE_PACKAGE,
            extra={"warnings": warnings, "product_id": product.id},
        )
        await set_service(
            session,
            target.service_id,
            product_id=product.id,
            options=options,
            lifecycle={"warnings": warnings, "job_id": job_id},
        )
        await record(
            session,
            actor,
            "service.change_package",
            LABEL,
            target.service_id,
            {"product": product.name, "warnings": len(warnings)},
        )
        out = await service_out(session, await find_service(session, target.service_id))
    return ActionOut(
        service=out, action="change_package", outcome="accepted", warnings=warnings, job_id=job_id
    )


async def reset_password(ctx: AppContext, ref: ServiceRef, actor: Actor) -> CredentialsOut:
    """A new root password, stored encrypted and returned (for billing to show or mail)."""
    delegated = await (await _service_flavour(ctx, ref)).reset_password(ctx, ref, actor)
    if delegated is not None:
        return delegated
    target = await _target(ctx, ref, "reset the password of", ("active",))
    try:
        async with open_driver(ctx, target.platform_id) as (driver, _):
            reset = await driver.reset_password(target.ref, target.flavour.chosen_password())
    except Exception as exc:
        raise _translate(exc, "reset the password of", target) from exc
    await store_credentials(ctx, target.server_id, reset.username, reset.password)
    async with ctx.db.session() as session:
        if reset.task is not None and not reset.task.finished:
            await _queue_sync(session, target, reset.task)
        await record(
            session, actor, "service.reset_password", LABEL, target.service_id, {"username": reset.username}
        )
    async with ctx.db.session() as session:
        service = await find_service(session, target.service_id)
        event = ServiceEvent(
            kind="password_reset",
            event_id=f"password_reset:{target.server_id}:{utcnow().isoformat()}",
            service_id=service.id,
            billing_service_id=service.billing_service_id,
            client_id=service.client_id,
            server_id=target.server_id,
            details={"username": reset.username},
        )
    await emit(ctx, event)
    return await service_credentials(ctx, target.service_id)


async def rename_service(
    ctx: AppContext, ref: ServiceRef, actor: Actor, *, hostname: str, name: str | None = None
) -> ActionOut:
    """Change the host name (and the platform's display name, when given)."""
    hostname = hostname.strip()
    if not hostname or len(hostname) > 253:
        raise Invalid("hostname must be 1-253 characters", field="hostname")
    target = await _target(ctx, ref, "rename", ("active", "suspended", "provisioning"))
    async with ctx.db.session() as session:
        before = await session.get(Server, target.server_id)
        old_hostname = before.hostname if before is not None else None
    try:
        async with open_driver(ctx, target.platform_id) as (driver, _):
            await driver.rename(target.ref, hostname, name=name)
    except Exception as exc:
        raise _translate(exc, "rename", target) from exc
    async with ctx.db.session() as session:
        values: dict[str, Any] = {"hostname": hostname}
        if name is not None:
            values["name"] = name
        await set_server(session, target.server_id, **values)
        await record(session, actor, "service.rename", LABEL, target.service_id, {"hostname": hostname})
        out = await service_out(session, await find_service(session, target.service_id))
    if old_hostname != hostname:
        await _dns_renamed(ctx, target.server_id, old_hostname, hostname)
    return ActionOut(service=out, action="rename", outcome="done")


async def _dns_renamed(ctx: AppContext, server_id: int, old: str | None, new: str) -> None:
    """Queue the forward-record move and PTR rewrite; the rename itself already succeeded."""
    from vpsbridge.logs import get_logger
    from vpsbridge.services.dns.hooks import on_server_renamed

    try:
        await on_server_renamed(ctx, server_id, old, new)
    except Exception as exc:
        get_logger(__name__).warning("dns_rename_not_queued", server=server_id, error=str(exc))


async def power_service(ctx: AppContext, ref: ServiceRef, action: PowerAction, actor: Actor) -> ActionOut:
    """Start, stop, shutdown (ACPI), restart or reset; the platform's task is followed in a job."""
    if action not in ("start", "stop", "shutdown", "restart", "reset"):
        raise Invalid(
            f"unknown power action {action!r} (start, stop, shutdown, restart, reset)", field="action"
        )
    flavour = await _service_flavour(ctx, ref)
    delegated = await flavour.service_action(ctx, ref, "power", actor, action=action)
    if delegated is not None:
        return delegated
    target = await _target(ctx, ref, action, ("active",))
    try:
        async with open_driver(ctx, target.platform_id) as (driver, _):
            task = await driver.power(target.ref, action)
    except Exception as exc:
        raise _translate(exc, action, target) from exc
    async with ctx.db.session() as session:
        job_id = await _queue_sync(session, target, task)
        await record(session, actor, f"service.power.{action}", LABEL, target.service_id, {})
        out = await service_out(session, await find_service(session, target.service_id))
    return ActionOut(service=out, action=f"power:{action}", outcome="accepted", job_id=job_id)


async def rebuild_service(
    ctx: AppContext,
    ref: ServiceRef,
    actor: Actor,
    *,
    os_template: str,
    ssh_keys: list[str] | tuple[str, ...] = (),
) -> ActionOut:
    """Reinstall the server with ``os_template``; the new root login is stored when known.

    Platforms with their own workflows (Proxmox) queue their rebuild; the others ask the platform to
    build and follow its task in a sync job.
    """
    flavour = await _service_flavour(ctx, ref)
    delegated = await flavour.service_action(
        ctx, ref, "rebuild", actor, os_template=os_template, ssh_keys=list(ssh_keys)
    )
    if delegated is not None:
        return delegated
    target = await _target(ctx, ref, "rebuild", ("active",))
    async with ctx.db.session() as session:
        server = await session.get(Server, target.server_id)
        hostname = server.hostname if server is not None else None
        name = server.name if server is not None else None
    try:
        async with open_driver(ctx, target.platform_id) as (driver, _):
            outcome = await target.flavour.build(
                driver, target.ref, os_template=os_template, ssh_keys=ssh_keys, hostname=hostname, name=name
            )
    except Exception as exc:
        raise _translate(exc, "rebuild", target) from exc
    if outcome.password:
        await store_credentials(ctx, target.server_id, outcome.username, outcome.password)
    async with ctx.db.session() as session:
        job_id = await _queue_sync(session, target, outcome.task)
        await record(session, actor, "service.rebuild", LABEL, target.service_id, {"os": os_template})
        out = await service_out(session, await find_service(session, target.service_id))
    return ActionOut(service=out, action="rebuild", outcome="accepted", job_id=job_id)


__all__ = [
    "CHANGE_PACKAGE",
    "DEPLOY",
    "SYNC",
    "TERMINATE",
    "change_package",
    "create_service",
    "get_service",
    "list_services",
    "power_service",
    "rebuild_service",
    "rename_service",
    "reset_password",
    "resolve_unknown_create",
    "service_credentials",
    "suspend_service",
    "terminate_service",
    "unsuspend_service",
]
