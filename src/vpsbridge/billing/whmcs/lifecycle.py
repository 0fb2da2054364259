"""The bridge's view of the provisioning, product, platform and stock services.

Handlers in :mod:`.bridge` speak WHMCS (billing service ids, ``{"ok": ...}`` answers, MB columns);
the services speak vpsbridge (service refs, :class:`ServiceOut`, drivers). This module is the
translation between the two and holds no state of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vpsbridge.billing.whmcs.options import merge_into, parse_module_settings
from vpsbridge.logs import get_logger
from vpsbridge.platforms.models import ServerRef
from vpsbridge.services import platforms as platform_service
from vpsbridge.services import provisioning as prov
from vpsbridge.services.audit import Actor
from vpsbridge.services.errors import Invalid, NotFound, ServiceError
from vpsbridge.services.products import get_product_by_billing_id
from vpsbridge.services.provisioning.drivers import open_driver
from vpsbridge.services.provisioning.records import set_server
from vpsbridge.services.stock import BillingStockQuery, Trigger, stock_for_billing

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext
    from vpsbridge.services.provisioning import ActionOut, ServiceOut

log = get_logger(__name__)

#: Service states in which the platform has (or is building) a server for the service.
HAS_SERVER = ("provisioning", "active", "suspended")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def hostname_from(domain: str) -> str | None:
    """The service's WHMCS "domain" as a host name, when it is one (clients type anything there)."""
    value = domain.strip().lower().rstrip(".")
    return value if value and _HOSTNAME.match(value) else None


def _ref(billing_service_id: str) -> str:
    return prov.by_billing(billing_service_id)


def _answer(action: ActionOut, message: str) -> dict[str, Any]:
    return {
        "ok": True,
        "message": action.message or message,
        "outcome": action.outcome,
        "warnings": list(action.warnings),
        "service": _summary(action.service),
    }


def _summary(service: ServiceOut) -> dict[str, Any]:
    server = service.server
    return {
        "id": service.id,
        "status": service.status,
        "server_id": server.external_id if server else None,
        "hostname": server.hostname if server else None,
        "ipv4": list(server.ipv4) if server else [],
        "ipv6": list(server.ipv6) if server else [],
    }


async def find(ctx: AppContext, billing_service_id: str) -> ServiceOut | None:
    try:
        return await prov.get_service(ctx, _ref(billing_service_id))
    except NotFound:
        return None


async def _require(ctx: AppContext, billing_service_id: str) -> ServiceOut:
    service = await find(ctx, billing_service_id)
    if service is None:
        raise NotFound(f"vpsbridge has no service {billing_service_id}; run Create first")
    return service


# --- lifecycle --------------------------------------------------------------------------------------


async def create(ctx: AppContext, request: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    service = await prov.create_service(ctx, dict(request), actor)
    if service.status in ("failed", "unknown"):
        raise ServiceError(service.last_error or f"the create ended {service.status}")
    return {"ok": True, "message": "accepted by the platform", "service": _summary(service)}


async def suspend(ctx: AppContext, billing_service_id: str, actor: Actor) -> dict[str, Any]:
    return _answer(await prov.suspend_service(ctx, _ref(billing_service_id), actor), "suspended")


async def unsuspend(ctx: AppContext, billing_service_id: str, actor: Actor) -> dict[str, Any]:
    return _answer(await prov.unsuspend_service(ctx, _ref(billing_service_id), actor), "unsuspended")


async def terminate(ctx: AppContext, billing_service_id: str, actor: Actor) -> dict[str, Any]:
    return _answer(await prov.terminate_service(ctx, _ref(billing_service_id), actor), "terminated")


async def change_package(
    ctx: AppContext, billing_service_id: str, product: str, options: Mapping[str, Any], actor: Actor
) -> dict[str, Any]:
    action = await prov.change_package(
        ctx, _ref(billing_service_id), {"product": product, "options": dict(options)}, actor
    )
    return _answer(action, "package changed")


async def change_password(
    ctx: AppContext, billing_service_id: str, password: str, actor: Actor
) -> dict[str, Any]:
    """WHMCS's ChangePassword: the platform sets a new root password and vpsbridge reports it back.

    Platforms such as VirtFusion choose the password themselves, so the one typed in WHMCS cannot be
    applied; the real one is written into WHMCS right after (UpdateClientProduct).
    """
    del password
    from vpsbridge.billing.whmcs.report import report_login_later

    creds = await prov.reset_password(ctx, _ref(billing_service_id), actor)
    report_login_later(ctx, creds.service_id, billing_service_id)
    return {"ok": True, "message": "root password reset; WHMCS receives the new one"}


async def power(ctx: AppContext, billing_service_id: str, action: str, actor: Actor) -> None:
    await prov.power_service(ctx, _ref(billing_service_id), action, actor)  # type: ignore[arg-type]


async def has_server(ctx: AppContext, billing_service_id: str) -> bool:
    service = await find(ctx, billing_service_id)
    return bool(service and service.server and service.server.external_id and service.status in HAS_SERVER)


# --- views ------------------------------------------------------------------------------------------


async def admin_view(ctx: AppContext, billing_service_id: str) -> dict[str, Any]:
    service = await find(ctx, billing_service_id)
    if service is None:
        return {"status": "not created", "server_id": "", "server": {}, "last_error": None}
    server = service.server
    return {
        "status": service.status,
        "server_id": server.external_id if server and server.external_id else "",
        "server": server.model_dump(mode="json") if server else {},
        "last_error": service.last_error,
        "platform": service.platform_name,
    }


async def client_view(ctx: AppContext, billing_service_id: str) -> dict[str, Any]:
    service = await _require(ctx, billing_service_id)
    summary = _summary(service)
    summary.pop("id", None)
    return summary


async def link_server(
    ctx: AppContext, billing_service_id: str, external_id: str | None, actor: Actor
) -> None:
    """The admin tab's "Server ID": settles a create whose outcome was unknown (set or cleared)."""
    service = await _require(ctx, billing_service_id)
    current = service.server.external_id if service.server else None
    if (external_id or None) == (current or None):
        return
    if service.status != "unknown":
        raise Invalid(
            "the server id can only be set while the create's outcome is unknown; "
            "use the operator console to move a service to another server"
        )
    await prov.resolve_unknown_create(ctx, service.id, actor, external_id=external_id)


async def refresh(ctx: AppContext, billing_service_id: str) -> None:
    """Ask the platform for the server again and keep its answer as the last known object."""
    service = await _require(ctx, billing_service_id)
    if service.server is None or not service.server.external_id or service.platform_id is None:
        raise Invalid(f"service {billing_service_id} has no server on the platform yet")
    async with open_driver(ctx, service.platform_id) as (driver, _):
        info = await driver.server_info(
            ServerRef(external_id=service.server.external_id, node=service.server.node), live=False
        )
    await set_server(ctx.db, service.server.id, last_known=info.raw or info.model_dump(mode="json"))


async def sso_url(ctx: AppContext, billing_service_id: str, *, admin: bool) -> str:
    service = await _require(ctx, billing_service_id)
    if service.server is None or not service.server.external_id or service.platform_id is None:
        raise Invalid("the server is not created yet")
    async with open_driver(ctx, service.platform_id) as (driver, _):
        make = getattr(driver, "sso_url", None)
        if make is None:
            raise Invalid(f"the {service.platform_type} platform has no panel single sign-on")
        ref = ServerRef(external_id=service.server.external_id, node=service.server.node)
        url: str = await make(service.client_id, ref)
        return url


async def usage(ctx: AppContext) -> list[dict[str, Any]]:
    """Per billing service: disk and bandwidth usage/limits in MB, as the ``usage_sync`` task stored them."""
    from vpsbridge.services.usage import billing_usage

    return await billing_usage(ctx)


async def accounts(ctx: AppContext) -> list[dict[str, Any]]:
    """Services for WHMCS's Server Sync tool."""
    out: list[dict[str, Any]] = []
    for status in ("active", "suspended"):
        for service in await prov.list_services(ctx, status=status, limit=10_000):
            server = service.server
            out.append(
                {
                    "domain": (server.hostname if server else None) or f"service-{service.id}",
                    "username": "root",
                    "email": "",
                    "product": service.product_name or "",
                    "primaryip": server.ipv4[0] if server and server.ipv4 else "",
                    "created": service.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    "status": status,
                }
            )
    return out


# --- platforms, products, stock ---------------------------------------------------------------------


async def platform_choices(ctx: AppContext) -> dict[str, str]:
    return {p.name: f"{p.name} ({p.type})" for p in await platform_service.list_platforms(ctx) if p.enabled}


async def placement_choices(ctx: AppContext, platform: str) -> dict[str, Any]:
    """Hypervisor groups and packages of a VirtFusion platform, for the product settings dropdowns."""
    try:
        found = await platform_service.get_platform(ctx, int(platform) if platform.isdigit() else platform)
    except NotFound:
        return {"groups": {}, "packages": {}, "error": f"no platform {platform!r}"}
    groups: dict[str, str] = {}
    packages: dict[str, str] = {}
    async with open_driver(ctx, found.id) as (driver, _):
        client = getattr(driver, "client", None)
        if client is not None and hasattr(client, "hypervisor_groups") and hasattr(client, "packages"):
            for group in await client.hypervisor_groups():
                groups[str(group.get("id"))] = str(group.get("name") or group.get("id"))
            for package in await client.packages():
                if package.get("enabled", True):
                    packages[str(package.get("id"))] = str(package.get("name") or package.get("id"))
    return {"groups": groups, "packages": packages}


async def validate(ctx: AppContext, product: str, client_id: str, options: Mapping[str, Any]) -> list[str]:
    """Problems that would stop a create: the platform's connection checks and unmapped options."""
    problems: list[str] = []
    found = await get_product_by_billing_id(ctx, product.removeprefix("billing:"))
    if found is None:
        return [f"no product {product}"]
    report = await platform_service.test_platform(ctx, found.platform_id)
    problems.extend(f"{c.name}: {c.detail}" for c in report.checks if not c.ok)
    async with open_driver(ctx, found.platform_id) as (driver, _):
        mapper = getattr(driver, "map_options", None)
        if mapper is not None and options:
            unknown = mapper(dict(options)).unknown
            problems.extend(
                f"configurable option {name!r} is not mapped to any platform field" for name in unknown
            )
    del client_id
    return problems


async def os_templates(ctx: AppContext, product: str) -> list[dict[str, Any]]:
    found = await get_product_by_billing_id(ctx, product.removeprefix("billing:"))
    if found is None:
        return []
    async with open_driver(ctx, found.platform_id) as (driver, _):
        templates = await driver.os_templates({**found.plan, **found.placement})
    return [t.model_dump(mode="json") for t in templates]


async def ssh_keys(ctx: AppContext, product: str, client_id: str) -> list[dict[str, Any]]:
    """Saved keys of the client on the product's platform (platforms that keep keys per user)."""
    found = await get_product_by_billing_id(ctx, product.removeprefix("billing:"))
    if found is None:
        return []
    async with open_driver(ctx, found.platform_id) as (driver, _):
        lister = getattr(driver, "ssh_keys", None)
        if lister is None:
            return []
        keys: list[dict[str, Any]] = await lister(client_id)
        return keys


async def stock(ctx: AppContext, products: Any, trigger: Trigger) -> dict[str, int | None]:
    """Stock per billing product id for the stock-controlled products WHMCS listed.

    Each product carries its module settings (and, when it has a Location option, ``locations``: that
    option's values), so the stock service computes for what WHMCS has now.
    ``None`` means "unknown, leave the quantity alone"; a product with broken settings and any
    failure of the computation answer ``None`` too - a hook must never zero stock by accident.
    """
    queries: list[BillingStockQuery] = []
    for row in products if isinstance(products, list) else []:
        if not isinstance(row, Mapping) or not row.get("id"):
            continue
        pid = str(row["id"])
        try:
            fields = parse_module_settings(row).product_fields(
                name=str(row.get("name") or pid), stock_control=True
            )
        except ServiceError:
            continue
        fields = merge_into(await get_product_by_billing_id(ctx, pid), fields)
        # The values of the product's Location option (the PHP reads them from WHMCS's option
        # tables): every hypervisor group it may be placed in counts towards its stock.
        raw = row.get("locations")
        locations = [str(v) for v in raw] if isinstance(raw, list) else None
        queries.append(
            BillingStockQuery(billing_product_id=pid, stock_control=True, product=fields, locations=locations)
        )
    if not queries:
        return {}
    try:
        return await stock_for_billing(ctx, queries, trigger=trigger)
    except Exception as exc:  # a hook answer (order acceptance) must not fail because of stock
        log.warning("bridge_stock_failed", error=f"{type(exc).__name__}: {exc}", trigger=trigger)
        return {q.billing_product_id: None for q in queries}
