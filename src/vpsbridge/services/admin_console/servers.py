"""Services and their servers as the operator console lists, inspects and corrects them.

Lifecycle actions (power, terminate, ...) belong to :mod:`vpsbridge.services.provisioning`; this
module adds what only an operator does: list with filters, read the stored server object, correct
the platform's server id by hand, refresh the stored object from the platform, and check that a
service's configuration (product, platform, plan, options) is still valid.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, cast, func, or_, select

from vpsbridge.logs import scrub
from vpsbridge.services.admin_console.audit import AuditEntry, AuditQuery, list_audit
from vpsbridge.services.admin_console.jobs import JobSummary, summary_of
from vpsbridge.services.admin_console.wording import (
    N_,
    WordedConflict,
    WordedInvalid,
    WordedNotFound,
    WordedUpstreamError,
    Wording,
    wording_of,
)
from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import ServiceError
from vpsbridge.services.provisioning import ServiceOut, get_service
from vpsbridge.services.provisioning.flavours import platform_capabilities
from vpsbridge.store.models import Job, Platform, Product, Server, Service

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

SERVICE_STATUSES = ("pending", "provisioning", "active", "suspended", "terminated", "failed", "unknown")


@dataclass(frozen=True)
class ServiceFilter:
    """Filters of the services list; the page remembers them per browser."""

    status: str | None = None
    platform_id: int | None = None
    product_id: int | None = None
    client_id: str | None = None
    #: Hostname, address, billing service id or platform server id (substring, case-insensitive).
    q: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class ServiceRow:
    id: int
    billing_service_id: str | None
    client_id: str
    status: str
    product_name: str | None
    platform_name: str | None
    hostname: str | None
    external_id: str | None
    server_state: str | None
    ipv4: list[str]
    last_error: str | None
    updated_at: dt.datetime


async def list_services(ctx: AppContext, flt: ServiceFilter) -> tuple[list[ServiceRow], int]:
    """One page of services (newest first) and the total number matching the filters."""
    base = (
        select(Service, Server, Product.name, Platform.name)
        .outerjoin(Server, Server.id == Service.server_id)
        .outerjoin(Product, Product.id == Service.product_id)
        .outerjoin(Platform, Platform.id == func.coalesce(Server.platform_id, Product.platform_id))
    )
    if flt.status:
        base = base.where(Service.status == flt.status)
    if flt.platform_id is not None:
        base = base.where(Platform.id == flt.platform_id)
    if flt.product_id is not None:
        base = base.where(Service.product_id == flt.product_id)
    if flt.client_id:
        base = base.where(Service.client_id == flt.client_id.strip())
    if flt.q:
        pattern = f"%{flt.q.strip().lower()}%"
        base = base.where(
            or_(
                func.lower(func.coalesce(Server.hostname, "")).like(pattern),
                func.lower(func.coalesce(Server.external_id, "")).like(pattern),
                func.lower(func.coalesce(Service.billing_service_id, "")).like(pattern),
                func.lower(cast(Server.last_known, String)).like(pattern),
            )
        )
    page = base.order_by(Service.id.desc()).limit(max(1, min(flt.limit, 500))).offset(max(0, flt.offset))
    async with ctx.db.session() as session:
        total = int(await session.scalar(select(func.count()).select_from(base.subquery())) or 0)
        rows = (await session.execute(page)).all()
    out = []
    for service, server, product_name, platform_name in rows:
        known = (server.last_known or {}) if server is not None else {}
        out.append(
            ServiceRow(
                id=service.id,
                billing_service_id=service.billing_service_id,
                client_id=service.client_id,
                status=service.status,
                product_name=product_name,
                platform_name=platform_name,
                hostname=server.hostname if server is not None else None,
                external_id=server.external_id if server is not None else None,
                server_state=server.state if server is not None else None,
                ipv4=[str(a) for a in known.get("ipv4") or []],
                last_error=service.last_error,
                updated_at=service.updated_at,
            )
        )
    return out, total


@dataclass(frozen=True)
class ServiceDetail:
    service: ServiceOut
    #: The platform's last answer about the server, as stored (secrets scrubbed).
    server_object: dict[str, Any]
    server_updated_at: dt.datetime | None
    jobs: list[JobSummary]
    audit: list[AuditEntry]
    supports: frozenset[str] = field(default_factory=frozenset)


async def service_detail(ctx: AppContext, service_id: int) -> ServiceDetail:
    """The service, its server object, its jobs and the audit trail of the service and its server."""
    service = await get_service(ctx, service_id)
    server_object: dict[str, Any] = {}
    server_updated: dt.datetime | None = None
    jobs: list[JobSummary] = []
    async with ctx.db.session() as session:
        if service.server is not None:
            server = await session.get(Server, service.server.id)
            if server is not None:
                server_object = scrub(dict(server.last_known or {}))
                server_updated = server.updated_at
        keys = [f"service:{service.id}"] + ([f"server:{service.server.id}"] if service.server else [])
        query = select(Job).where(Job.resource_key.in_(keys))
        if service.job_id is not None:
            query = select(Job).where(or_(Job.resource_key.in_(keys), Job.id == service.job_id))
        found = (await session.scalars(query.order_by(Job.id.desc()).limit(50))).all()
        jobs = [summary_of(j) for j in found]
    audit = await list_audit(ctx, AuditQuery(object_type="service", object_id=str(service.id), limit=50))
    return ServiceDetail(
        service=service,
        server_object=server_object,
        server_updated_at=server_updated,
        jobs=jobs,
        audit=audit,
        supports=platform_capabilities(service.platform_type),
    )


async def set_server_external_id(
    ctx: AppContext, service_id: int, external_id: str | None, actor: Actor
) -> ServiceOut:
    """Point a service's server at another platform server id (fixing a lost or wrong link).

    The id must be unique per platform (the table's constraint); clearing it is allowed, for a
    server that never existed upstream.
    """
    value = (external_id or "").strip() or None
    if value is not None and (len(value) > 64 or any(c.isspace() for c in value)):
        raise WordedInvalid(N_("A server id is up to 64 characters without spaces."), field="external_id")
    async with ctx.db.session() as session:
        service = await session.get(Service, service_id)
        if service is None:
            raise WordedNotFound(N_("Service %(service)s does not exist."), service=service_id)
        if service.server_id is None:
            raise WordedConflict(
                N_("Service %(service)s has no server record yet; provision it first."), service=service_id
            )
        server = await session.get(Server, service.server_id, with_for_update=True)
        assert server is not None
        if value is not None:
            clash = await session.scalar(
                select(Server.id).where(
                    Server.platform_id == server.platform_id,
                    Server.external_id == value,
                    Server.id != server.id,
                )
            )
            if clash is not None:
                raise WordedConflict(
                    N_(
                        "Server id %(external_id)s already belongs to server record %(server)s "
                        "on this platform."
                    ),
                    external_id=value,
                    server=clash,
                )
        previous = server.external_id
        server.external_id = value
        await session.flush()
        await record(
            session,
            actor,
            "service.server_id",
            "service",
            service_id,
            {"server": server.id, "from": previous, "to": value},
        )
    return await get_service(ctx, service_id)


async def refresh_server_object(ctx: AppContext, service_id: int, actor: Actor) -> ServiceOut:
    """Ask the platform for the server now and store its answer as the server's last known object."""
    from vpsbridge.http.errors import UpstreamError as HttpUpstreamError
    from vpsbridge.platforms.models import ServerRef
    from vpsbridge.services.provisioning.drivers import open_driver

    service = await get_service(ctx, service_id)
    server = service.server
    if server is None or not server.external_id:
        raise WordedConflict(
            N_("Service %(service)s has no platform server id; set it first."), service=service_id
        )
    try:
        async with open_driver(ctx, server.platform_id) as (driver, config):
            info = await driver.server_info(
                ServerRef(external_id=server.external_id, node=server.node), live=True
            )
    except HttpUpstreamError as exc:
        raise WordedUpstreamError(
            N_("The platform did not answer for server %(external_id)s: %(reason)s"),
            external_id=server.external_id,
            reason=str(exc),
        ) from exc
    snapshot = info.model_dump(mode="json")
    async with ctx.db.session() as session:
        row = await session.get(Server, server.id, with_for_update=True)
        if row is None:
            raise WordedNotFound(N_("Server record %(server)s no longer exists."), server=server.id)
        known = dict(row.last_known or {})
        known.update({"ipv4": list(info.ipv4), "ipv6": list(info.ipv6), "info": snapshot})
        row.last_known = known
        if info.hostname:
            row.hostname = info.hostname
        await session.flush()
        await record(
            session,
            actor,
            "service.refresh",
            "service",
            service_id,
            {"server": row.id, "platform": config.name, "state": info.state},
        )
    return await get_service(ctx, service_id)


@dataclass(frozen=True)
class Finding:
    """One line of "validate config": ``ok`` / ``warning`` / ``error`` and a sentence."""

    level: str
    wording: Wording

    @property
    def message(self) -> str:
        """The sentence in English (the console shows ``wording`` translated)."""
        return str(self.wording)


def _finding(level: str, template: str, **values: Any) -> Finding:
    return Finding(level, Wording(template, values))


def _error_finding(exc: ServiceError) -> Finding:
    """A refusal of another service as a finding: its own wording when it has one, else its sentence."""
    return Finding("error", wording_of(exc) or Wording(exc.message))


async def validate_service(ctx: AppContext, service_id: int) -> list[Finding]:
    """Check what a deploy or package change would need: product, platform, plan and options."""
    from vpsbridge.services.provisioning.drivers import platform_config
    from vpsbridge.services.provisioning.flavours import ProductView, SpecRequest, flavour_for

    findings: list[Finding] = []
    async with ctx.db.session() as session:
        service = await session.get(Service, service_id)
        if service is None:
            raise WordedNotFound(N_("Service %(service)s does not exist."), service=service_id)
        product = await session.get(Product, service.product_id) if service.product_id else None
        server = await session.get(Server, service.server_id) if service.server_id else None
        options = dict(service.options or {})
        client_id = service.client_id
        status = service.status
        hostname = (server.hostname if server else None) or (service.lifecycle or {}).get("hostname") or ""
        view = (
            ProductView(
                id=product.id,
                name=product.name,
                platform_id=product.platform_id,
                placement=dict(product.placement or {}),
                plan=dict(product.plan or {}),
                settings=dict(product.settings or {}),
            )
            if product is not None
            else None
        )
        enabled = product.enabled if product is not None else False
    if view is None:
        return [_finding("error", N_("the service has no product; set one through a package change"))]
    if enabled:
        findings.append(_finding("ok", N_("product '%(product)s' is enabled"), product=view.name))
    else:
        findings.append(_finding("warning", N_("product '%(product)s' is disabled"), product=view.name))
    try:
        config = await platform_config(ctx, view.platform_id)
    except ServiceError as exc:
        findings.append(_error_finding(exc))
        return findings
    findings.append(
        _finding(
            "ok", N_("platform '%(platform)s' (%(type)s) is enabled"), platform=config.name, type=config.type
        )
    )
    if not config.credentials:
        findings.append(
            _finding("error", N_("platform '%(platform)s' has no credentials"), platform=config.name)
        )
    try:
        flavour = flavour_for(config.type)
        spec = flavour.server_spec(
            view,
            config,
            SpecRequest(client_id=client_id, options=options, hostname=hostname or "check.invalid"),
        )
        package = spec.extra.get("package_id")
        if package is not None:
            # The platform's package sizes the server (VirtFusion): the spec's sizes are placeholders,
            # so the check reads the package itself - and that it still exists and is enabled.
            findings.append(await _package_finding(ctx, view.platform_id, package))
        else:
            findings.append(
                _finding(
                    "ok",
                    N_("plan resolves: %(cpu)s cores, %(memory)s MB memory, %(disk)s GB disk"),
                    cpu=spec.cpu_cores,
                    memory=spec.memory_mb,
                    disk=spec.disk_gb,
                )
            )
    except ServiceError as exc:
        findings.append(_error_finding(exc))
    except (KeyError, LookupError) as exc:
        findings.append(
            _finding(
                "error",
                N_("no provisioning support for platform type '%(type)s': %(reason)s"),
                type=config.type,
                reason=str(exc),
            )
        )
    if server is not None and server.external_id is None and status not in ("pending", "terminated"):
        findings.append(_finding("warning", N_("the server has no platform server id recorded")))
    return findings


async def _package_finding(ctx: AppContext, platform_id: int, package: Any) -> Finding:
    """What the platform says about the plan's package: its sizes, or why it cannot be used."""
    from vpsbridge.http.errors import UpstreamError as HttpUpstreamError
    from vpsbridge.http.errors import UpstreamNotFound
    from vpsbridge.services.provisioning.drivers import open_driver

    try:
        async with open_driver(ctx, platform_id) as (driver, _config):
            read = getattr(driver, "package", None)
            if read is None:
                return _finding("ok", N_("plan resolves: package %(package)s"), package=package)
            data = await read(int(package))
    except UpstreamNotFound:
        return _finding("error", N_("package %(package)s does not exist on the platform"), package=package)
    except (HttpUpstreamError, ValueError) as exc:
        return _finding(
            "warning",
            N_("could not read package %(package)s from the platform: %(reason)s"),
            package=package,
            reason=str(exc),
        )
    if not data.get("enabled", True):
        return _finding(
            "error",
            N_("package %(package)s (%(name)s) is disabled on the platform"),
            package=package,
            name=data.get("name"),
        )
    return _finding(
        "ok",
        N_(
            "plan resolves: package %(package)s (%(name)s): %(cpu)s cores, %(memory)s MB memory, "
            "%(disk)s GB disk"
        ),
        package=package,
        name=data.get("name"),
        cpu=data.get("cpuCores"),
        memory=data.get("memory"),
        disk=data.get("primaryStorage"),
    )


async def platform_login_url(ctx: AppContext, service_id: int, actor: Actor) -> str:
    """A one-time link into the platform's own panel, signed in as the service's owner.

    Only platforms with a panel single sign-on (VirtFusion) offer it; the driver checks that the
    link points at the panel itself before it is handed to a browser.
    """
    from vpsbridge.http.errors import UpstreamError as HttpUpstreamError
    from vpsbridge.platforms.errors import PlatformError
    from vpsbridge.platforms.models import ServerRef
    from vpsbridge.services.provisioning.drivers import open_driver

    service = await get_service(ctx, service_id)
    server = service.server
    if server is None or not server.external_id:
        raise WordedConflict(N_("Service %(service)s has no server on the platform yet."), service=service_id)
    try:
        async with open_driver(ctx, server.platform_id) as (driver, config):
            sso = getattr(driver, "sso_url", None)
            if sso is None:
                raise WordedConflict(
                    N_("Platform '%(platform)s' (%(type)s) has no panel sign-in."),
                    platform=config.name,
                    type=config.type,
                )
            url = str(
                await sso(service.client_id, ServerRef(external_id=server.external_id, node=server.node))
            )
    except (HttpUpstreamError, PlatformError) as exc:
        raise WordedUpstreamError(
            N_("The platform refused the panel sign-in: %(reason)s"), reason=str(exc)
        ) from exc
    async with ctx.db.session() as session:
        await record(session, actor, "service.platform_login", "service", service_id, {"server": server.id})
    return url
