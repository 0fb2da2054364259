"""Proxmox VE services: the flavour, the deploy plan, and the lifecycle entry points.

A Proxmox deploy is a sequence of a dozen upstream steps that together take minutes, so nothing
here calls Proxmox. Creating a service records it, reserves its addresses and queues the
``proxmox.deploy`` workflow - all in one transaction, answered within milliseconds; the workflow
(``vpsbridge.workflows.proxmox``) does the rest step by step. Terminate, package changes, suspend,
unsuspend, password reset and rebuild likewise record what was asked and queue their workflow.

Product settings (all optional except a template): resources in ``plan`` (see
:mod:`vpsbridge.core.options` for names and defaults), the template as ``plan.template`` (VMID or
template name) or per operating system in ``plan.os_templates`` (``{"Debian 12": 9000}``); where to
put the VM in ``placement`` (``nodes``, ``group``, ``storage``, ``additional_storage``, ``pools``,
``pools6``); and ``bridge``, ``vlan``, ``firewall``, ``ciuser``, ``nameservers``,
``migrate_timeout``, ``start_timeout`` in the product settings, the placement or the platform
settings (first found wins, in that order).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vpsbridge.core.options import OptionError, ResolvedResources, resolve_resources
from vpsbridge.jobs.queue import enqueue
from vpsbridge.platforms.base import Platform as Driver
from vpsbridge.platforms.errors import NotSupported
from vpsbridge.platforms.models import Capability, ServerSpec, TaskHandle
from vpsbridge.services import ipam
from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.services.inputs import parse_input
from vpsbridge.services.lookup import find_by_ref
from vpsbridge.services.provisioning.drivers import PlatformConfig
from vpsbridge.services.provisioning.flavours import Flavour, ProductView, SpecRequest, register_flavour
from vpsbridge.services.provisioning.records import ServiceRef, find_service, service_out
from vpsbridge.services.provisioning.schemas import (
    ActionOut,
    ChangePackageRequest,
    CredentialsOut,
    ServiceCreate,
    ServiceOut,
)
from vpsbridge.store.models import Platform, Product, Server, Service, utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from vpsbridge.services.context import AppContext

DEPLOY = "proxmox.deploy"
TERMINATE = "proxmox.terminate"
CHANGE_PACKAGE = "proxmox.change_package"
SUSPEND = "proxmox.suspend"
UNSUSPEND = "proxmox.unsuspend"
RESET_PASSWORD = "proxmox.reset_password"  # noqa: S105 - a workflow name
REBUILD = "proxmox.rebuild"
POWER = "proxmox.power"
WORKFLOWS = (DEPLOY, TERMINATE, CHANGE_PACKAGE, SUSPEND, UNSUSPEND, RESET_PASSWORD, REBUILD, POWER)

LABEL = "service"
_LIVE = ("provisioning", "active", "suspended")


def resource_key(server_id: int) -> str:
    return f"server:{server_id}"


@dataclass(frozen=True)
class DeployPlan:
    """Everything a deploy (or rebuild, or package change) needs besides the records; JSON-safe."""

    resources: dict[str, Any]
    template: str | None
    storage: str | None
    additional_storage: str | None
    nodes: list[str] = field(default_factory=list)
    group: str | None = None
    pools: list[str] = field(default_factory=list)
    pools6: list[str] = field(default_factory=list)
    bridge: str = "vmbr0"
    vlan: int | None = None
    firewall: bool = True
    ciuser: str = "root"
    nameservers: list[str] = field(default_factory=list)
    migrate_timeout: float = 600.0
    start_timeout: float = 60.0
    ssh_keys: list[str] = field(default_factory=list)

    @property
    def spec(self) -> ResolvedResources:
        return ResolvedResources.from_dict(self.resources)

    @property
    def scopes(self) -> list[str]:
        """Pool scopes that may serve this VM: its group, then the nodes it may land on."""
        return [s for s in [self.group, *self.nodes] if s]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeployPlan:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _setting(name: str, product: ProductView, platform: PlatformConfig | None, default: Any = None) -> Any:
    for source in (product.settings, product.placement, product.plan, platform.settings if platform else {}):
        if source.get(name) not in (None, ""):
            return source[name]
    return default


def _as_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if str(v)]
    return [s.strip() for s in str(value).split(",") if s.strip()]


def resolve_template(plan: Mapping[str, Any], os_choice: str | None) -> str | None:
    """The template (VMID or name) for the chosen operating system, else the product's default."""
    mapping = {str(k).casefold(): v for k, v in (plan.get("os_templates") or {}).items()}
    if os_choice:
        hit = mapping.get(str(os_choice).casefold())
        return str(hit) if hit is not None else str(os_choice)
    default = plan.get("template") or plan.get("os_template")
    return str(default) if default not in (None, "") else None


def deploy_plan(
    product: ProductView,
    platform: PlatformConfig | None,
    options: Mapping[str, Any],
    *,
    os_template: str | None = None,
    ssh_keys: tuple[str, ...] | list[str] = (),
) -> DeployPlan:
    """Product settings + configurable options -> what to build. Raises :class:`Invalid`."""
    try:
        resources = resolve_resources(
            product.plan,
            options,
            option_names=product.settings.get("option_names") or {},
            ignored=product.settings.get("ignored_options") or [],
        )
    except OptionError as exc:
        raise Invalid(str(exc), field="options") from None
    template = resolve_template(product.plan, os_template or resources.os_template)
    if template is None:
        raise Invalid(
            f"product {product.name!r} has no template: set plan.template (a template VMID or name)",
            field="product",
        )
    storage = _setting("storage", product, platform)
    vlan = _setting("vlan", product, platform)
    return DeployPlan(
        resources=resources.as_dict(),
        template=template,
        storage=str(storage) if storage else None,
        additional_storage=str(_setting("additional_storage", product, platform) or storage or "") or None,
        nodes=_as_list(_setting("nodes", product, platform) or _setting("node", product, platform)),
        group=_setting("group", product, platform),
        pools=_as_list(product.placement.get("pools") or product.settings.get("pools")),
        pools6=_as_list(product.placement.get("pools6") or product.settings.get("pools6")),
        bridge=str(_setting("bridge", product, platform, "vmbr0")),
        vlan=int(vlan) if vlan not in (None, "") else None,
        firewall=bool(_setting("firewall", product, platform, True)),
        ciuser=str(_setting("ciuser", product, platform, "root")),
        nameservers=_as_list(_setting("nameservers", product, platform)),
        migrate_timeout=float(_setting("migrate_timeout", product, platform, 600)),
        start_timeout=float(_setting("start_timeout", product, platform, 60)),
        ssh_keys=list(ssh_keys),
    )


class ProxmoxFlavour(Flavour):
    """Proxmox: resources from product settings and options with the documented names.

    Creation does not go through a single platform call: :func:`create_proxmox_service` records the
    service and queues the ``proxmox.deploy`` workflow instead.
    """

    type_name = "proxmox"
    capabilities = frozenset({Capability.BUILD})

    def server_spec(self, product: ProductView, platform: PlatformConfig, request: SpecRequest) -> ServerSpec:
        plan = deploy_plan(product, platform, request.options, os_template=request.os_template)
        spec = plan.spec
        return ServerSpec(
            hostname=request.hostname,
            name=request.name,
            cpu_cores=spec.cpu_cores,
            memory_mb=spec.memory_mb,
            disk_gb=spec.disk_gb,
            bandwidth_mbps=spec.bandwidth_mbps or None,
            ipv4=spec.ipv4,
            ipv6=spec.ipv6,
            placement=dict(product.placement),
            os_template=plan.template,
            ssh_keys=tuple(request.ssh_keys),
            owner=request.client_id,
            extra={"proxmox_plan": plan.as_dict()},
        )

    async def create(self, driver: Driver, spec: ServerSpec) -> TaskHandle:
        raise NotSupported(
            "Proxmox services are deployed by the proxmox.deploy workflow "
            "(vpsbridge.services.provisioning.proxmox.create_proxmox_service)"
        )

    # The generic lifecycle functions delegate here, so billing, the API and the CLI reach the
    # Proxmox workflows through the same calls as every other platform.

    #: How long a password reset waits for its workflow before answering (billing shows the result).
    reset_wait_seconds: ClassVar[float] = 45.0

    async def create_service(self, ctx: AppContext, req: ServiceCreate, actor: Actor) -> ServiceOut | None:
        return await create_proxmox_service(ctx, req, actor)

    async def terminate_service(
        self, ctx: AppContext, ref: ServiceRef, actor: Actor, *, delay_seconds: float | None
    ) -> ActionOut | None:
        if delay_seconds is None:
            async with ctx.db.session() as session:
                service = await find_service(session, ref)
                row = await session.get(Product, service.product_id) if service.product_id else None
                delay_seconds = float((row.settings or {}).get("terminate_delay_seconds", 0)) if row else 0.0
        if delay_seconds < 0:
            raise Invalid("delay_seconds cannot be negative", field="delay_seconds")
        return await terminate_proxmox_service(
            ctx, ref, actor, delay_seconds=ctx.settings.scaled(delay_seconds)
        )

    async def change_package(
        self, ctx: AppContext, ref: ServiceRef, req: ChangePackageRequest, actor: Actor
    ) -> ActionOut | None:
        return await change_proxmox_package(ctx, ref, req, actor)

    async def service_action(
        self, ctx: AppContext, ref: ServiceRef, operation: str, actor: Actor, **extra: Any
    ) -> ActionOut | None:
        kind, allowed = _ACTIONS[operation]
        return await queue_action(ctx, ref, kind, actor, allowed=allowed, **extra)

    async def reset_password(self, ctx: AppContext, ref: ServiceRef, actor: Actor) -> CredentialsOut | None:
        """Queue the cloud-init reset and wait (bounded) for it: callers show the new password."""
        import asyncio
        import time

        from vpsbridge.services.provisioning.events import ServiceEvent, emit
        from vpsbridge.services.provisioning.lifecycle import service_credentials
        from vpsbridge.store.models import Job

        queued = await queue_action(ctx, ref, RESET_PASSWORD, actor, allowed=("active",))
        job_id = queued.job_id
        deadline = time.monotonic() + self.reset_wait_seconds
        status = "queued"
        while time.monotonic() < deadline:
            async with ctx.db.session() as session:
                job = await session.get(Job, job_id)
                status = job.status if job is not None else "gone"
                error = job.last_error if job is not None else None
            if status == "succeeded":
                out = await service_credentials(ctx, queued.service.id)
                await emit(
                    ctx,
                    ServiceEvent(
                        kind="password_reset",
                        event_id=f"password_reset:{out.service_id}:job:{job_id}",
                        service_id=out.service_id,
                        billing_service_id=queued.service.billing_service_id,
                        client_id=queued.service.client_id,
                        server_id=queued.service.server.id if queued.service.server else None,
                        details={"username": out.username},
                    ),
                )
                return out
            if status in ("failed", "cancelled", "gone"):
                raise Conflict(f"the password reset of service {queued.service.id} failed: {error or status}")
            await asyncio.sleep(0.2)
        raise Conflict(
            f"the password reset of service {queued.service.id} is queued (job {job_id}) but not finished "
            "yet; the new password is stored when it is"
        )


#: Generic action name -> (workflow, service states it may start from).
_ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "suspend": (SUSPEND, ("active", "provisioning")),
    "unsuspend": (UNSUSPEND, ("suspended",)),
    "power": (POWER, ("active",)),
    "rebuild": (REBUILD, ("active",)),
}

register_flavour(ProxmoxFlavour())


# --- reading the catalog ---------------------------------------------------------------------------


async def _product(session: AsyncSession, ref: int | str) -> Product:
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


def product_view(row: Product) -> ProductView:
    return ProductView(
        id=row.id,
        name=row.name,
        platform_id=row.platform_id,
        placement=dict(row.placement or {}),
        plan=dict(row.plan or {}),
        settings=dict(row.settings or {}),
    )


def platform_view(row: Platform) -> PlatformConfig:
    """The platform's non-secret settings (credentials are decrypted only by the workflows)."""
    return PlatformConfig(
        id=row.id,
        name=row.name,
        type=row.type,
        url=row.url,
        credentials={},
        verify_tls=row.verify_tls,
        ca_bundle=row.ca_bundle,
        settings=dict(row.settings or {}),
    )


async def queue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe: str | None = None,
    delay: float = 0.0,
) -> int:
    from datetime import timedelta

    return await enqueue(
        session,
        kind,
        payload,
        dedupe_key=dedupe,
        resource_key=resource_key(int(payload["server_id"])),
        run_at=utcnow() + timedelta(seconds=delay) if delay > 0 else None,
    )


# --- create ----------------------------------------------------------------------------------------


async def create_proxmox_service(
    ctx: AppContext, data: ServiceCreate | Mapping[str, Any], actor: Actor
) -> ServiceOut:
    """Record the service, reserve its addresses and queue the deploy; idempotent per billing service.

    One transaction: the service and server rows, the address rows and the deploy job commit
    together or not at all, so a create that fails (no free address: :class:`Conflict`) leaves
    nothing behind. A repeated call with the same ``billing_service_id`` returns the existing
    service without reserving anything.
    """
    req = parse_input(ServiceCreate, data)
    async with ctx.db.session() as session:
        product_row = await _product(session, req.product)
        if not product_row.enabled:
            raise Invalid(f"product {product_row.name!r} is disabled", field="product")
        platform_row = await session.get(Platform, product_row.platform_id)
        if platform_row is None or platform_row.type != "proxmox":
            raise Invalid(f"product {product_row.name!r} is not on a Proxmox platform", field="product")
        product, platform = product_view(product_row), platform_view(platform_row)
    plan = deploy_plan(product, platform, req.options, os_template=req.os_template, ssh_keys=req.ssh_keys)
    hostname = req.hostname or f"vps-{secrets.token_hex(4)}"
    for _ in range(3):
        try:
            return await _create_once(ctx, req, product, plan, hostname, actor)
        except IntegrityError:
            continue  # a concurrent create of the same billing service won; return its record
    raise Conflict(f"billing service {req.billing_service_id} is being created by another request")


async def _create_once(
    ctx: AppContext, req: ServiceCreate, product: ProductView, plan: DeployPlan, hostname: str, actor: Actor
) -> ServiceOut:
    async with ctx.db.session() as session:
        if req.billing_service_id is not None:
            existing = (
                await session.execute(
                    select(Service).where(Service.billing_service_id == req.billing_service_id)
                )
            ).scalar_one_or_none()
            if existing is not None and existing.status != "terminated":
                if existing.status == "failed":
                    raise Conflict(
                        f"service {existing.id} failed to deploy ({existing.last_error}); terminate it "
                        "first (that removes whatever the failed deploy left), then create it again"
                    )
                return await service_out(session, existing)
        else:
            existing = None
        server = Server(platform_id=product.platform_id, hostname=hostname, name=req.name, state="building")
        session.add(server)
        await session.flush()
        owner = f"vpsbridge:{server.id}:{secrets.token_hex(6)}"
        server.last_known = {"owner": owner}
        request = {"hostname": hostname, "ssh_keys": list(req.ssh_keys), "client": req.client.model_dump()}
        service = existing or Service(billing_service_id=req.billing_service_id, client_id=req.client_id)
        service.client_id = req.client_id
        service.product_id = product.id
        service.server_id = server.id
        service.status = "provisioning"
        service.last_error = None
        service.options = dict(req.options)
        service.lifecycle = {"request": request}
        session.add(service)
        await session.flush()
        spec = plan.spec
        addresses = await ipam.allocate(
            session,
            server_id=server.id,
            platform_id=product.platform_id,
            ipv4=spec.ipv4,
            ipv6=spec.ipv6,
            scopes=plan.scopes,
            pool_refs=plan.pools,
            pools6=plan.pools6,
        )
        server.last_known = {
            "owner": owner,
            "ipv4": [a.address for a in addresses if a.family == 4],
            "ipv6": [a.subnet or a.address for a in addresses if a.family == 6],
        }
        payload = {
            "service_id": service.id,
            "server_id": server.id,
            "platform_id": product.platform_id,
            "owner": owner,
            "plan": plan.as_dict(),
        }
        job_id = await queue(session, DEPLOY, payload, dedupe=f"deploy:service:{service.id}")
        service.lifecycle = {**service.lifecycle, "job_id": job_id}
        await record(
            session,
            actor,
            "service.create",
            LABEL,
            service.id,
            {"platform": "proxmox", "addresses": [a.address for a in addresses], "job_id": job_id},
        )
        await session.flush()
        return await service_out(session, service)


# --- actions on an existing service ---------------------------------------------------------------


async def _service_and_server(
    session: AsyncSession, ref: ServiceRef, *, lock: bool = False
) -> tuple[Service, Server]:
    service = await find_service(session, ref, lock=lock)
    server = await session.get(Server, service.server_id) if service.server_id else None
    if server is None:
        raise Conflict(f"service {service.id} has no server record")
    return service, server


def _payload(service: Service, server: Server, **extra: Any) -> dict[str, Any]:
    return {
        "service_id": service.id,
        "server_id": server.id,
        "platform_id": server.platform_id,
        "owner": (server.last_known or {}).get("owner"),
        **extra,
    }


async def _action_out(
    session: AsyncSession,
    service: Service,
    action: str,
    outcome: Any,
    job_id: int | None,
    message: str = "",
    warnings: list[str] | None = None,
) -> ActionOut:
    await session.flush()
    return ActionOut(
        service=await service_out(session, service),
        action=action,
        outcome=outcome,
        job_id=job_id,
        message=message,
        warnings=warnings or [],
    )


async def terminate_proxmox_service(
    ctx: AppContext, ref: ServiceRef, actor: Actor, *, delay_seconds: float = 0.0
) -> ActionOut:
    """Billing gets an answer at once and the customer loses access; the worker deletes the VM."""
    async with ctx.db.session() as session:
        service, server = await _service_and_server(session, ref, lock=True)
        if service.status in ("terminating", "terminated"):
            return await _action_out(
                session, service, "terminate", "unchanged", (service.lifecycle or {}).get("job_id")
            )
        if service.status == "error_terminate":
            raise Conflict(
                f"service {service.id} failed to terminate before ({service.last_error}); "
                "retry it with 'retry_terminate', mark it removed, or delete the record"
            )
        job_id = await _queue_terminate(session, service, server, delay_seconds)
        await record(session, actor, "service.terminate", LABEL, service.id, {"job_id": job_id})
        return await _action_out(session, service, "terminate", "queued", job_id, "terminating")


async def _queue_terminate(session: AsyncSession, service: Service, server: Server, delay: float) -> int:
    not_before = utcnow().timestamp() + max(delay, 0.0)
    job_id = await queue(
        session,
        TERMINATE,
        _payload(service, server, not_before=not_before, previous_status=service.status),
        dedupe=f"terminate:service:{service.id}",
    )
    service.status = "terminating"
    service.last_error = None
    service.lifecycle = {**(service.lifecycle or {}), "job_id": job_id}
    return job_id


async def retry_terminate(ctx: AppContext, ref: ServiceRef, actor: Actor) -> ActionOut:
    """Operator: run the terminate workflow again for a service in ``error_terminate``."""
    async with ctx.db.session() as session:
        service, server = await _service_and_server(session, ref, lock=True)
        if service.status != "error_terminate":
            raise Conflict(f"service {service.id} is {service.status}, not error_terminate")
        job_id = await _queue_terminate(session, service, server, 0.0)
        await record(session, actor, "service.terminate_retry", LABEL, service.id, {"job_id": job_id})
        return await _action_out(session, service, "terminate", "queued", job_id)


async def mark_removed(ctx: AppContext, ref: ServiceRef, actor: Actor) -> ActionOut:
    """Operator: the VM is gone (checked by hand); release its addresses and VMID, mark terminated."""
    from vpsbridge.services.proxmox_vmids import release_vmid

    async with ctx.db.session() as session:
        service, server = await _service_and_server(session, ref, lock=True)
        if service.status != "error_terminate":
            raise Conflict(
                f"service {service.id} is {service.status}; only error_terminate can be marked removed"
            )
        released = await ipam.release(session, server.id)
        vmid = server.external_id
        service.status = "terminated"
        service.last_error = None
        server.state = "terminated"
        server.last_known = {**(server.last_known or {}), "vmid": vmid}
        server.external_id = None
        await record(
            session, actor, "service.mark_removed", LABEL, service.id, {"released": released, "vmid": vmid}
        )
        out = await _action_out(
            session, service, "mark_removed", "done", None, f"{released} address(es) released"
        )
    if vmid and vmid.isdigit():
        await release_vmid(ctx, server.platform_id, int(vmid))
    return out


async def delete_record(ctx: AppContext, ref: ServiceRef, actor: Actor) -> None:
    """Operator: forget a service in ``error_terminate`` entirely (its addresses stay reserved)."""
    async with ctx.db.session() as session:
        service, server = await _service_and_server(session, ref, lock=True)
        if service.status not in ("error_terminate", "terminated", "failed"):
            raise Conflict(f"service {service.id} is {service.status}; terminate it first")
        await record(session, actor, "service.delete_record", LABEL, service.id, {"server_id": server.id})
        await session.delete(service)


async def change_proxmox_package(
    ctx: AppContext,
    ref: ServiceRef,
    data: ChangePackageRequest | Mapping[str, Any],
    actor: Actor,
    *,
    confirm_detach: bool = False,
    allow_smaller_disks: bool = False,
) -> ActionOut:
    """Queue a package change; a change that would shrink a disk is refused (:class:`Invalid`).

    Disks are never shrunk, so a smaller System Disk or Additional Disk (or an Additional Disk of 0
    without ``confirm_detach``) is refused with a message naming the disk and both sizes: billing
    must not charge for a package the server will not get. ``allow_smaller_disks`` (operators only)
    queues the change anyway; the workflow then keeps the disks and ``warnings`` say so.
    """
    from vpsbridge.core.options import shrink_refusals, shrink_warnings

    req = parse_input(ChangePackageRequest, data)
    async with ctx.db.session() as session:
        service, server = await _service_and_server(session, ref, lock=True)
        if service.status not in ("active", "suspended"):
            raise Conflict(f"cannot change the package of service {service.id}: it is {service.status}")
        old_row = await session.get(Product, service.product_id) if service.product_id else None
        new_row = await _product(session, req.product) if req.product is not None else old_row
        if new_row is None:
            raise Invalid("the service has no product; give one", field="product")
        if new_row.platform_id != server.platform_id:
            raise Invalid(f"product {new_row.name!r} is on another platform", field="product")
        platform_row = await session.get(Platform, server.platform_id)
        platform = platform_view(platform_row) if platform_row else None
        options = dict(req.options if req.options is not None else (service.options or {}))
        new_plan = deploy_plan(product_view(new_row), platform, options)
        old_plan = (
            deploy_plan(product_view(old_row), platform, dict(service.options or {}))
            if old_row is not None
            else new_plan
        )
        refusals = shrink_refusals(old_plan.spec, new_plan.spec, confirm_detach=confirm_detach)
        if refusals and not allow_smaller_disks:
            raise Invalid(
                "; ".join(refusals),
                field="options",
                details={"disks": refusals, "service_id": service.id},
            )
        warnings = shrink_warnings(old_plan.spec, new_plan.spec, confirm_detach=confirm_detach)
        job_id = await queue(
            session,
            CHANGE_PACKAGE,
            _payload(service, server, plan=new_plan.as_dict(), confirm_detach=confirm_detach),
            dedupe=f"change_package:service:{service.id}",
        )
        service.product_id = new_row.id
        service.options = options
        service.lifecycle = {**(service.lifecycle or {}), "job_id": job_id, "warnings": warnings}
        await record(
            session,
            actor,
            "service.change_package",
            LABEL,
            service.id,
            {"product": new_row.name, "warnings": warnings},
        )
        return await _action_out(session, service, "change_package", "queued", job_id, warnings=warnings)


async def queue_action(
    ctx: AppContext, ref: ServiceRef, kind: str, actor: Actor, *, allowed: tuple[str, ...], **extra: Any
) -> ActionOut:
    """Queue suspend / unsuspend / password reset / rebuild / power for an existing VM."""
    if kind not in WORKFLOWS:
        raise Invalid(f"unknown Proxmox action {kind!r}")
    async with ctx.db.session() as session:
        service, server = await _service_and_server(session, ref, lock=True)
        if service.status not in allowed:
            raise Conflict(f"cannot {kind.split('.', 1)[1]} service {service.id}: it is {service.status}")
        if not server.external_id:
            raise Conflict(f"service {service.id} has no VM yet")
        if kind == REBUILD:
            row = await session.get(Product, service.product_id) if service.product_id else None
            if row is None:
                raise Invalid("the service has no product", field="product")
            platform_row = await session.get(Platform, server.platform_id)
            plan = deploy_plan(
                product_view(row),
                platform_view(platform_row) if platform_row else None,
                dict(service.options or {}),
                os_template=extra.pop("os_template", None),
                ssh_keys=extra.pop("ssh_keys", ()) or (),
            )
            extra["plan"] = plan.as_dict()
            extra["new_password"] = True
        job_id = await queue(session, kind, _payload(service, server, **extra))
        if kind == SUSPEND:
            service.status = "suspended"  # access ends now; the workflow stops the VM
        service.lifecycle = {**(service.lifecycle or {}), "job_id": job_id}
        await record(
            session, actor, f"service.{kind.split('.', 1)[1]}", LABEL, service.id, {"job_id": job_id}
        )
        return await _action_out(session, service, kind.split(".", 1)[1], "queued", job_id)


__all__ = [
    "CHANGE_PACKAGE",
    "DEPLOY",
    "POWER",
    "REBUILD",
    "RESET_PASSWORD",
    "SUSPEND",
    "TERMINATE",
    "UNSUSPEND",
    "WORKFLOWS",
    "DeployPlan",
    "ProxmoxFlavour",
    "change_proxmox_package",
    "create_proxmox_service",
    "delete_record",
    "deploy_plan",
    "mark_removed",
    "queue_action",
    "resolve_template",
    "retry_terminate",
    "terminate_proxmox_service",
]
