"""Provisioning a service from the operator console, without a billing system in front.

An operator evaluating vpsbridge (or serving a customer by hand) creates a service the same way the
billing bridge, the JSON API and the CLI do: through :func:`vpsbridge.services.provisioning.create_service`,
which records the service, has the platform accept the create, queues the deploy job and writes the
audit rows naming the actor. This module adds only what a person at a form needs before that call:

* the products on offer with their stock as it is now (a stored figure older than
  :data:`~vpsbridge.services.stock.FRESH_SECONDS` is recomputed on the spot),
* the operating systems the product's platform offers for its plan,
* the checks a form needs to answer in words: a known quantity of 0 refuses the create (the
  platform would have no room, or only the room the stock buffer keeps back), an OS must be one
  the product offers, SSH keys must look like public keys.

Stock that cannot be read (``unknown``) does not block a create: the platform itself refuses when
it has no room, and an unreadable figure is not a reason to say "no".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from vpsbridge.platforms.models import Capability, OsTemplate
from vpsbridge.services import stock
from vpsbridge.services.admin_console.wording import N_, WordedConflict, WordedInvalid, WordedUpstreamError
from vpsbridge.services.audit import Actor
from vpsbridge.services.errors import Invalid
from vpsbridge.services.platforms import get_platform, list_platforms
from vpsbridge.services.products import get_product, list_products
from vpsbridge.services.provisioning import ClientInfo, ServiceCreate, ServiceOut, create_service
from vpsbridge.services.schemas import ProductOut
from vpsbridge.services.stock import StockResultOut

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

log = structlog.stdlib.get_logger("vpsbridge.admin")

#: Stock statuses whose quantity is a fact (the same rule the billing side follows).
KNOWN_STOCK = ("ok", "missing", "disabled")
#: How long a platform's OS list for one product is reused between page views.
GALLERY_TTL = 300.0
#: Platforms that key their own users by the billing client's number (VirtFusion's ``extRelationId``):
#: a client id that is not a number would be refused only after the service was recorded.
NUMERIC_CLIENT_IDS = frozenset({"virtfusion"})
SSH_KEY = re.compile(r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-\S+) [A-Za-z0-9+/=]+( .*)?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class ProductChoice:
    """A product as the "New service" page lists it: what it is and how many more fit right now."""

    id: int
    name: str
    platform: str
    platform_type: str
    stock_control: bool
    #: The quantity (``None`` = never computed or unknown) and its status (``ok``, ``unknown``, ...).
    quantity: int | None
    stock_status: str
    stock_age_seconds: float | None
    unknown: tuple[str, ...] = ()

    @property
    def out_of_stock(self) -> bool:
        """A *known* quantity of 0; an unknown figure never refuses a create."""
        return self.stock_status in KNOWN_STOCK and self.quantity == 0


@dataclass(frozen=True)
class OsChoice:
    id: str
    name: str
    category: str
    eol: bool


@dataclass(frozen=True)
class NewService:
    """The console form, as typed values (strings already stripped; empty optional = ``None``)."""

    product_id: int
    client_id: str
    client_name: str = ""
    client_email: str = ""
    hostname: str = ""
    os_template: str | None = None
    ssh_keys: tuple[str, ...] = ()


def _choice(product: ProductOut, platform_type: str, row: StockResultOut | None) -> ProductChoice:
    return ProductChoice(
        id=product.id,
        name=product.name,
        platform=product.platform_name,
        platform_type=platform_type,
        stock_control=row.stock_control if row is not None else False,
        quantity=row.quantity if row is not None else None,
        stock_status=row.status if row is not None else "never",
        stock_age_seconds=row.age_seconds if row is not None else None,
        unknown=tuple(row.unknown) if row is not None else (),
    )


def _fresh(row: StockResultOut | None) -> bool:
    return row is not None and row.age_seconds is not None and row.age_seconds <= stock.FRESH_SECONDS


async def product_choices(ctx: AppContext) -> list[ProductChoice]:
    """Every enabled product with its stock, recomputing figures that are not fresh any more.

    One recalculation covers every stale product (one fetch per package and group), so the page
    costs at most one round of upstream calls, and none while the figures are fresh.
    """
    products = [p for p in await list_products(ctx) if p.enabled]
    if not products:
        return []
    rows = {r.product_id: r for r in await stock.results(ctx, [p.id for p in products])}
    stale = [p.id for p in products if not _fresh(rows.get(p.id))]
    if stale:
        report = await stock.recalculate(ctx, stale)
        rows.update({r.product_id: r for r in report.products})
    types = {p.id: p.type for p in await list_platforms(ctx)}
    return [_choice(p, types.get(p.platform_id, ""), rows.get(p.id)) for p in products]


async def live_stock(ctx: AppContext, product_id: int) -> ProductChoice:
    """One product's stock computed now from fresh capacity (the check right before a create)."""
    product = await get_product(ctx, product_id)
    platform = await get_platform(ctx, product.platform_id)
    report = await stock.recalculate(ctx, [product.id], forget=True)
    row = next((r for r in report.products if r.product_id == product.id), None)
    return _choice(product, platform.type, row)


async def product_gallery(ctx: AppContext, product_id: int) -> dict[str, list[OsChoice]]:
    """The operating systems the product's platform offers for its plan, grouped by family.

    Empty when the platform does not list templates (the form then takes a template id as text).
    """
    from vpsbridge.http.errors import UpstreamError as HttpUpstreamError
    from vpsbridge.platforms.errors import PlatformError
    from vpsbridge.services.provisioning.drivers import open_driver

    product = await get_product(ctx, product_id)

    async def fetch() -> list[dict[str, Any]]:
        async with open_driver(ctx, product.platform_id) as (driver, _config):
            if not driver.supports(Capability.OS_TEMPLATES):
                return []
            templates: list[OsTemplate] = await driver.os_templates(product.plan)
        return [t.model_dump(mode="json") for t in templates]

    key = f"admin:gallery:{product.platform_id}:{product.id}:{product.updated_at.isoformat()}"
    try:
        items = await ctx.cache.get_or_fetch(key, GALLERY_TTL, fetch)
    except (HttpUpstreamError, PlatformError) as exc:
        raise WordedUpstreamError(
            N_("Platform '%(platform)s' did not list its operating systems: %(reason)s"),
            platform=product.platform_name,
            reason=str(exc),
        ) from exc
    groups: dict[str, list[OsChoice]] = {}
    for item in items:
        category = str(item.get("family") or "Other")
        groups.setdefault(category, []).append(
            OsChoice(
                id=str(item["id"]),
                name=str(item["name"]),
                category=category,
                eol="eol" in (item.get("features") or ()),
            )
        )
    return dict(sorted(groups.items()))


def _check(req: NewService) -> None:
    """What the form can get wrong, named by field, before anything is asked of a platform."""
    from vpsbridge.services.portal import check_hostname

    if not req.client_id:
        raise WordedInvalid(N_("Enter the client id the service belongs to."), field="client_id")
    if len(req.client_id) > 64:
        raise WordedInvalid(N_("The client id may be at most 64 characters."), field="client_id")
    if not EMAIL.match(req.client_email):
        raise WordedInvalid(
            N_("Enter the client's e-mail address (platforms with their own users need it)."),
            field="client_email",
        )
    try:
        check_hostname(req.hostname)
    except Invalid:
        raise WordedInvalid(
            N_(
                "Enter a host name of letters, digits and hyphens: parts of 1 to 63 characters "
                "separated by dots, at most 253 in all (vps1.example.net)."
            ),
            field="hostname",
        ) from None
    for key in req.ssh_keys:
        if not SSH_KEY.match(key):
            raise WordedInvalid(
                N_("That does not look like an SSH public key (ssh-ed25519 AAAA...)."), field="ssh_keys"
            )


async def create_from_console(ctx: AppContext, req: NewService, actor: Actor) -> ServiceOut:
    """Check the form, the product's live stock and its OS list, then create like the bridge does.

    Raises :class:`Invalid` for a field the operator must change, :class:`Conflict` when the product
    is out of stock, and whatever :func:`create_service` raises (a platform refusal, for instance).
    The audit rows (``service.claim``, ``service.create``) are written by :func:`create_service`
    and name ``actor``.
    """
    _check(req)
    choice = await live_stock(ctx, req.product_id)
    if choice.platform_type in NUMERIC_CLIENT_IDS and not req.client_id.isdigit():
        raise WordedInvalid(
            N_(
                "Platform %(platform)s (%(type)s) ties servers to a client number; "
                "enter the client id as digits only."
            ),
            field="client_id",
            platform=choice.platform,
            type=choice.platform_type,
        )
    if choice.out_of_stock:
        raise WordedConflict(
            N_(
                "%(product)s is out of stock: no more servers of this product fit on platform "
                "%(platform)s (its stock buffer included). Free capacity, lower the product's stock "
                "buffer or choose another product."
            ),
            details={"product_id": choice.id, "quantity": 0},
            product=choice.name,
            platform=choice.platform,
        )
    gallery = await product_gallery(ctx, req.product_id)
    offered = {entry.id for entries in gallery.values() for entry in entries}
    if offered and req.os_template not in offered:
        raise WordedInvalid(N_("Choose one of the operating systems this product offers."), field="os")
    hostname = req.hostname.strip().rstrip(".").lower()
    out = await create_service(
        ctx,
        ServiceCreate(
            client_id=req.client_id,
            client=ClientInfo(name=req.client_name, email=req.client_email),
            product=req.product_id,
            os_template=req.os_template or None,
            hostname=hostname,
            ssh_keys=list(req.ssh_keys),
        ),
        actor,
    )
    log.info("console_service_created", service_id=out.id, product_id=req.product_id, actor=actor.id)
    return out
