"""Platforms, products, IP pools and DNS providers/zones: list, add, edit, delete, test.

Stored secrets never reach the browser: a credential field is always empty and says "unchanged -
enter a new value to replace"; leaving it empty keeps the stored value, typing replaces it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vpsbridge.core.ipam.zone_hint import reverse_zone_hint
from vpsbridge.services import admin_console, dns_providers, platforms, pools, products
from vpsbridge.services.errors import ServiceError
from vpsbridge.web.admin.deps import PREFIX, Operator, Signed, flash_of, see_other
from vpsbridge.web.admin.forms import (
    checkbox,
    integer,
    json_object,
    lines,
    number,
    optional,
    pretty,
    secret_fields,
    text,
)
from vpsbridge.web.admin.wording import AdminRoute, error_text
from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui import _, render

router = APIRouter(route_class=AdminRoute, include_in_schema=False)

#: The credential fields each type stores (the form shows one empty password input per name).
PLATFORM_SECRETS: dict[str, tuple[str, ...]] = {
    "virtfusion": ("token",),
    "proxmox": ("token_id", "token_secret", "console_user", "console_password"),
    "dummy": ("token",),
}
DNS_SECRETS: dict[str, tuple[str, ...]] = {
    "powerdns": ("api_key",),
    "cloudflare": ("api_token", "email", "api_key"),
    "hestiacp": ("access_key", "secret_key"),
}


def _page(request: Request, operator: Operator, template: str, nav: str, **values: Any) -> Response:
    message, kind = flash_of(request)
    return render(
        request,
        f"admin/{template}",
        {"op": operator, "nav": nav, "flash": message, "flash_kind": kind, **values},
    )


# --- platforms ------------------------------------------------------------------------------------


@router.get("/platforms")
async def platforms_page(request: Request, operator: Signed) -> Response:
    rows = await platforms.list_platforms(get_ctx(request))
    return _page(request, operator, "platforms.html", "platforms", rows=rows)


def _platform_values(form: Any, type_: str, *, creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": text(form, "name"),
        "url": text(form, "url"),
        "verify_tls": checkbox(form, "verify_tls"),
        "ca_bundle": optional(form, "ca_bundle"),
        "settings": json_object(form, "settings"),
        "enabled": checkbox(form, "enabled"),
    }
    if creating:
        values["type"] = type_
    secrets = secret_fields(form, PLATFORM_SECRETS.get(type_, ("token",)))
    if secrets is not None:
        values["credentials"] = secrets
    return values


@router.get("/platforms/new")
async def platform_new(request: Request, operator: Signed) -> Response:
    return _page(
        request,
        operator,
        "platform.html",
        "platforms",
        p=None,
        types=platforms.known_platform_types(),
        secrets=PLATFORM_SECRETS,
        report=None,
        capacity=None,
        capacity_error=None,
        settings_json="{}",
    )


@router.post("/platforms/new")
async def platform_create(request: Request, operator: Signed) -> Response:
    form = await request.form()
    type_ = text(form, "type")
    out = await platforms.create_platform(
        get_ctx(request), _platform_values(form, type_, creating=True), operator.actor
    )
    return see_other(
        f"{PREFIX}/platforms/{out.id}", flash=_(request, "Platform %(name)s added.", name=out.name)
    )


async def _platform_page(request: Request, operator: Operator, platform_id: int, **extra: Any) -> Response:
    row = await platforms.get_platform(get_ctx(request), platform_id)
    values: dict[str, Any] = {"report": None, "capacity": None, "capacity_error": None}
    values.update(extra)
    return _page(
        request,
        operator,
        "platform.html",
        "platforms",
        p=row,
        types=platforms.known_platform_types(),
        secrets=PLATFORM_SECRETS,
        settings_json=pretty(row.settings),
        **values,
    )


@router.get("/platforms/{platform_id}")
async def platform_page(request: Request, platform_id: int, operator: Signed) -> Response:
    return await _platform_page(request, operator, platform_id)


@router.post("/platforms/{platform_id}")
async def platform_update(request: Request, platform_id: int, operator: Signed) -> Response:
    ctx = get_ctx(request)
    current = await platforms.get_platform(ctx, platform_id)
    form = await request.form()
    await platforms.update_platform(
        ctx, platform_id, _platform_values(form, current.type, creating=False), operator.actor
    )
    return see_other(f"{PREFIX}/platforms/{platform_id}", flash=_(request, "Platform saved."))


@router.post("/platforms/{platform_id}/test")
async def platform_test(request: Request, platform_id: int, operator: Signed) -> Response:
    report = await platforms.test_platform(get_ctx(request), platform_id)
    return await _platform_page(request, operator, platform_id, report=report)


@router.post("/platforms/{platform_id}/capacity")
async def platform_capacity(request: Request, platform_id: int, operator: Signed) -> Response:
    try:
        capacity = await admin_console.platform_capacity(get_ctx(request), platform_id)
    except ServiceError as exc:
        return await _platform_page(request, operator, platform_id, capacity_error=error_text(request, exc))
    return await _platform_page(request, operator, platform_id, capacity=capacity)


@router.post("/platforms/{platform_id}/delete")
async def platform_delete(request: Request, platform_id: int, operator: Signed) -> Response:
    await platforms.delete_platform(get_ctx(request), platform_id, operator.actor)
    return see_other(f"{PREFIX}/platforms", flash=_(request, "Platform deleted."), kind="warning")


# --- products -------------------------------------------------------------------------------------


@router.get("/products")
async def products_page(request: Request, operator: Signed) -> Response:
    from vpsbridge.services import stock

    ctx = get_ctx(request)
    rows = await products.list_products(ctx)
    stock_by_id = {r.product_id: r for r in await stock.results(ctx)}
    return _page(request, operator, "products.html", "products", rows=rows, stock=stock_by_id)


def _product_values(form: Any) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "billing_product_id": optional(form, "billing_product_id"),
        "platform": text(form, "platform"),
        "placement": json_object(form, "placement"),
        "plan": json_object(form, "plan"),
        "stock_control": checkbox(form, "stock_control"),
        "stock_buffer_pct": number(form, "stock_buffer_pct", 10.0),
        "dns_zone": optional(form, "dns_zone"),
        "settings": json_object(form, "settings"),
        "enabled": checkbox(form, "enabled"),
    }


@router.get("/products/new")
async def product_new(request: Request, operator: Signed) -> Response:
    all_platforms = await platforms.list_platforms(get_ctx(request))
    return _page(
        request, operator, "product.html", "products", p=None, platforms=all_platforms, stock=None, js={}
    )


@router.post("/products/new")
async def product_create(request: Request, operator: Signed) -> Response:
    out = await products.create_product(
        get_ctx(request), _product_values(await request.form()), operator.actor
    )
    return see_other(
        f"{PREFIX}/products/{out.id}", flash=_(request, "Product %(name)s added.", name=out.name)
    )


@router.get("/products/{product_id}")
async def product_page(request: Request, product_id: int, operator: Signed) -> Response:
    from vpsbridge.services import stock

    ctx = get_ctx(request)
    row = await products.get_product(ctx, product_id)
    found = await stock.results(ctx, [product_id])
    js = {"placement": pretty(row.placement), "plan": pretty(row.plan), "settings": pretty(row.settings)}
    return _page(
        request,
        operator,
        "product.html",
        "products",
        p=row,
        platforms=await platforms.list_platforms(ctx),
        stock=found[0] if found else None,
        js=js,
    )


@router.post("/products/{product_id}")
async def product_update(request: Request, product_id: int, operator: Signed) -> Response:
    await products.update_product(
        get_ctx(request), product_id, _product_values(await request.form()), operator.actor
    )
    return see_other(f"{PREFIX}/products/{product_id}", flash=_(request, "Product saved."))


# --- IP pools -------------------------------------------------------------------------------------


def _hint(network: str) -> str | None:
    try:
        return reverse_zone_hint(network)
    except ValueError:
        return None


@router.get("/pools")
async def pools_page(request: Request, operator: Signed) -> Response:
    rows = await pools.list_pools(get_ctx(request))
    return _page(
        request, operator, "pools.html", "pools", rows=rows, hints={r.id: _hint(r.network) for r in rows}
    )


def _pool_values(form: Any) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "platform": optional(form, "platform"),
        "scope": optional(form, "scope"),
        "network": text(form, "network"),
        "range_start": optional(form, "range_start"),
        "range_end": optional(form, "range_end"),
        "gateway": optional(form, "gateway"),
        "prefix_length": integer(form, "prefix_length"),
        "dns_servers": lines(form, "dns_servers", commas=True),
        "bridge": optional(form, "bridge"),
        "vlan": integer(form, "vlan"),
        "enabled": checkbox(form, "enabled"),
    }


@router.get("/pools/new")
async def pool_new(request: Request, operator: Signed) -> Response:
    all_platforms = await platforms.list_platforms(get_ctx(request))
    return _page(request, operator, "pool.html", "pools", p=None, platforms=all_platforms, hint=None)


@router.post("/pools/new")
async def pool_create(request: Request, operator: Signed) -> Response:
    out = await pools.create_pool(get_ctx(request), _pool_values(await request.form()), operator.actor)
    return see_other(f"{PREFIX}/pools/{out.id}", flash=_(request, "IP pool %(name)s added.", name=out.name))


@router.get("/pools/{pool_id}")
async def pool_page(request: Request, pool_id: int, operator: Signed) -> Response:
    ctx = get_ctx(request)
    row = await pools.get_pool(ctx, pool_id)
    return _page(
        request,
        operator,
        "pool.html",
        "pools",
        p=row,
        platforms=await platforms.list_platforms(ctx),
        hint=_hint(row.network),
    )


@router.post("/pools/{pool_id}")
async def pool_update(request: Request, pool_id: int, operator: Signed) -> Response:
    await pools.update_pool(get_ctx(request), pool_id, _pool_values(await request.form()), operator.actor)
    return see_other(f"{PREFIX}/pools/{pool_id}", flash=_(request, "IP pool saved."))


@router.post("/pools/{pool_id}/delete")
async def pool_delete(request: Request, pool_id: int, operator: Signed) -> Response:
    await pools.delete_pool(get_ctx(request), pool_id, operator.actor)
    return see_other(f"{PREFIX}/pools", flash=_(request, "IP pool deleted."), kind="warning")


# --- DNS providers and zones ----------------------------------------------------------------------


@router.get("/dns")
async def dns_page(request: Request, operator: Signed) -> Response:
    from vpsbridge.services import dns

    ctx = get_ctx(request)
    return _page(
        request,
        operator,
        "dns.html",
        "dns",
        rows=await dns_providers.list_dns_providers(ctx),
        zones=await dns.list_zones(ctx),
        report=None,
    )


def _dns_values(form: Any, type_: str, *, creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": text(form, "name"),
        "url": optional(form, "url"),
        "settings": json_object(form, "settings"),
        "enabled": checkbox(form, "enabled"),
    }
    if creating:
        values["type"] = type_
    secrets = secret_fields(form, DNS_SECRETS.get(type_, ("api_key",)))
    if secrets is not None:
        values["credentials"] = secrets
    return values


@router.get("/dns/new")
async def dns_new(request: Request, operator: Signed) -> Response:
    return _page(
        request,
        operator,
        "dns_provider.html",
        "dns",
        p=None,
        secrets=DNS_SECRETS,
        zones=[],
        test=None,
        settings_json="{}",
    )


@router.post("/dns/new")
async def dns_create(request: Request, operator: Signed) -> Response:
    form = await request.form()
    out = await dns_providers.create_dns_provider(
        get_ctx(request), _dns_values(form, text(form, "type"), creating=True), operator.actor
    )
    return see_other(
        f"{PREFIX}/dns/{out.id}", flash=_(request, "DNS provider %(name)s added.", name=out.name)
    )


async def _dns_provider_page(
    request: Request, operator: Operator, provider_id: int, **extra: Any
) -> Response:
    from vpsbridge.services import dns

    ctx = get_ctx(request)
    row = await dns_providers.get_dns_provider(ctx, provider_id)
    values: dict[str, Any] = {"test": None}
    values.update(extra)
    return _page(
        request,
        operator,
        "dns_provider.html",
        "dns",
        p=row,
        secrets=DNS_SECRETS,
        zones=await dns.list_zones(ctx, provider_id),
        settings_json=pretty(row.settings),
        **values,
    )


@router.get("/dns/{provider_id}")
async def dns_provider_page(request: Request, provider_id: int, operator: Signed) -> Response:
    return await _dns_provider_page(request, operator, provider_id)


@router.post("/dns/{provider_id}")
async def dns_update(request: Request, provider_id: int, operator: Signed) -> Response:
    ctx = get_ctx(request)
    current = await dns_providers.get_dns_provider(ctx, provider_id)
    form = await request.form()
    await dns_providers.update_dns_provider(
        ctx, provider_id, _dns_values(form, current.type, creating=False), operator.actor
    )
    return see_other(f"{PREFIX}/dns/{provider_id}", flash=_(request, "DNS provider saved."))


@router.post("/dns/{provider_id}/test")
async def dns_test(request: Request, provider_id: int, operator: Signed) -> Response:
    from vpsbridge.services import dns

    report = await dns.test_dns_provider(get_ctx(request), provider_id)
    return await _dns_provider_page(request, operator, provider_id, test=report)


@router.post("/dns/{provider_id}/zones/sync")
async def dns_sync_zones(request: Request, provider_id: int, operator: Signed) -> Response:
    from vpsbridge.services import dns

    report = await dns.sync_zones(get_ctx(request), provider_id, operator.actor)
    summary = _(
        request,
        "Zones refreshed: %(added)s added, %(removed)s removed, %(kept)s kept.",
        added=len(report.added),
        removed=len(report.removed),
        kept=len(report.kept),
    )
    return see_other(f"{PREFIX}/dns/{provider_id}", flash=summary)


@router.post("/dns/{provider_id}/delete")
async def dns_delete(request: Request, provider_id: int, operator: Signed) -> Response:
    await dns_providers.delete_dns_provider(get_ctx(request), provider_id, operator.actor)
    return see_other(f"{PREFIX}/dns", flash=_(request, "DNS provider deleted."), kind="warning")


@router.post("/dns-reconcile")
async def dns_reconcile(request: Request, operator: Signed) -> Response:
    """Add every missing PTR now; with "force", also reset existing PTRs to the hostnames."""
    from vpsbridge.services.audit import record
    from vpsbridge.services.dns import list_zones
    from vpsbridge.services.dns.sync import reconcile_fleet

    ctx = get_ctx(request)
    force = checkbox(await request.form(), "force")
    report = await reconcile_fleet(ctx, force=force)
    async with ctx.db.session() as session:
        await record(session, operator.actor, "dns.reconcile", "dns", None, {"force": force})
    return _page(
        request,
        operator,
        "dns.html",
        "dns",
        rows=await dns_providers.list_dns_providers(ctx),
        zones=await list_zones(ctx),
        report=report.as_dict(),
        force=force,
    )
