"""The client portal's application service: sign-in links, ownership, and what each panel shows.

**Sign-in.** A portal link carries a one-time token bound to a billing client *and* one of their
services; it lives two minutes and works once (:mod:`vpsbridge.services.web_sessions` makes the
single use atomic). WHMCS's single sign-on button (through the bridge), the operator console ("open
the portal as this client") and the CLI (``vpsbridge portal link``) all mint through
:func:`mint_portal_link`.

**Ownership.** Every portal request names a service; :func:`owned_service` re-reads it and refuses
(404, so existence is not revealed) unless it belongs to the signed-in client. A service without a
server yet answers 409 with what to do (:class:`NotProvisioned`).

**Upstream economy.** The overview reads the platform once per server per ``INFO_TTL`` through the
shared cache's single-flight fetch, so fifty people refreshing one page cost one API call; slow
panels (traffic, OS gallery, backups) have their own longer TTLs and load separately. When the
platform cannot be asked, the last known record is shown with a note instead of an error page.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import select

from vpsbridge.core.traffic import month_key, month_slots
from vpsbridge.platforms import registry
from vpsbridge.platforms.models import (
    TRAFFIC_HISTORY_MONTHS,
    ConsoleTicket,
    OsTemplate,
    PowerAction,
    ServerInfo,
    ServerRef,
    TrafficReport,
)
from vpsbridge.services import web_sessions
from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Conflict, Invalid, NotFound, ServiceError, UpstreamError
from vpsbridge.services.provisioning import lifecycle
from vpsbridge.services.provisioning.drivers import open_driver
from vpsbridge.services.provisioning.flavours import platform_capabilities
from vpsbridge.services.provisioning.records import find_service
from vpsbridge.store.models import Platform, Product, Server, Service, utcnow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

T = TypeVar("T")

KIND = "portal"
LINK_TTL = dt.timedelta(minutes=2)
INFO_TTL = 15.0
STATE_TTL = 3.0
STATS_TTL = 20.0
TRAFFIC_TTL = 300.0
TEMPLATES_TTL = 600.0
BACKUPS_TTL = 120.0
#: Console relay tickets: the browser must connect within this many seconds, once.
CONSOLE_TICKET_TTL = 30.0
#: How long sign-in waits for the OS list it fetches for the overview (then signs in anyway).
WARM_SECONDS = 3.0

HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
PSEUDO_FILESYSTEMS = frozenset(
    {"tmpfs", "devtmpfs", "proc", "sysfs", "overlay", "squashfs", "devpts", "cgroup", "cgroup2", "ramfs"}
)


class NotProvisioned(ServiceError):
    """The service exists but has no server yet (or no longer): nothing to manage in the portal."""

    code = "not_provisioned"
    http_status = 409


class NotOwned(NotFound):
    """Another client's service, answered like a missing one so ids cannot be probed."""

    code = "not_found"


# --- sign-in links ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortalLink:
    url: str
    token: str
    client_id: str
    service_id: int
    expires_at: dt.datetime


async def mint_portal_link(
    ctx: AppContext, service_ref: int | str, actor: Actor, *, base_url: str | None = None
) -> PortalLink:
    """A one-time sign-in link to ``service_ref`` (own id or ``billing:<id>``) for its owner."""
    async with ctx.db.session() as session:
        service = await find_service(session, service_ref)
        if service.status == "terminated":
            raise Conflict(f"service {service.id} is terminated; there is nothing to manage")
        client_id, service_id = service.client_id, service.id
        await record(session, actor, "portal.link", "service", service_id, {"client_id": client_id})
    token = await web_sessions.mint_one_time_token(
        ctx, KIND, client_id, {"service_id": service_id}, ttl=LINK_TTL
    )
    base = (base_url or ctx.settings.public_url or f"http://{ctx.settings.host}:{ctx.settings.port}").rstrip(
        "/"
    )
    return PortalLink(
        url=f"{base}/portal/sso?token={token}",
        token=token,
        client_id=client_id,
        service_id=service_id,
        expires_at=utcnow() + LINK_TTL,
    )


async def sso_url(ctx: AppContext, service_ref: int | str, *, admin: bool = False) -> str:
    """The portal link for the billing bridge's single sign-on buttons (``admin``: opened by staff)."""
    actor = Actor(type="bridge", id="admin-sso" if admin else "client-sso")
    return (await mint_portal_link(ctx, service_ref, actor)).url


@dataclass(frozen=True, slots=True)
class PortalSignIn:
    client_id: str
    service_id: int


async def consume_portal_token(ctx: AppContext, token: str | None) -> PortalSignIn | None:
    """Use a sign-in token once; ``None`` when unknown, expired or already used."""
    found = await web_sessions.consume_one_time_token(ctx, KIND, token)
    if found is None:
        return None
    service_id = int(found.data.get("service_id", 0))
    try:
        await owned_row(ctx, found.subject, service_id)  # still theirs?
    except NotFound:
        return None
    return PortalSignIn(client_id=found.subject, service_id=service_id)


# --- ownership ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnedService:
    """A service of the signed-in client with what the panels need to reach its server."""

    id: int
    client_id: str
    billing_service_id: str | None
    status: str
    product_name: str | None
    product_settings: dict[str, Any]
    plan: dict[str, Any]
    server_id: int | None
    platform_id: int | None
    platform_type: str | None
    platform_name: str | None
    external_id: str | None
    node: str | None
    hostname: str | None
    name: str | None
    server_state: str | None
    created_at: dt.datetime
    last_known: dict[str, Any] = field(default_factory=dict)

    @property
    def provisioned(self) -> bool:
        return self.server_id is not None and self.external_id is not None and self.status != "terminated"

    @property
    def ref(self) -> ServerRef:
        if self.external_id is None:
            raise NotProvisioned("this service has no server yet")
        return ServerRef(external_id=self.external_id, node=self.node)

    def supports(self, capability: str) -> bool:
        return capability in platform_capabilities(self.platform_type)


async def owned_row(ctx: AppContext, client_id: str, service_id: int) -> OwnedService:
    """The service if it belongs to ``client_id``; :class:`NotOwned` (404) otherwise."""
    async with ctx.db.read() as session:
        service = await session.get(Service, service_id)
        if service is None or service.client_id != client_id or service.status == "terminated":
            raise NotOwned("no such service in your account")
        product = await session.get(Product, service.product_id) if service.product_id else None
        server = await session.get(Server, service.server_id) if service.server_id else None
        platform = await session.get(Platform, server.platform_id) if server is not None else None
        return OwnedService(
            id=service.id,
            client_id=service.client_id,
            billing_service_id=service.billing_service_id,
            status=service.status,
            product_name=product.name if product else None,
            product_settings=dict(product.settings or {}) if product else {},
            plan=dict(product.plan or {}) if product else {},
            server_id=server.id if server else None,
            platform_id=server.platform_id if server else None,
            platform_type=platform.type if platform else None,
            platform_name=platform.name if platform else None,
            external_id=server.external_id if server else None,
            node=server.node if server else None,
            hostname=server.hostname if server else None,
            name=server.name if server else None,
            server_state=server.state if server else None,
            created_at=(server.created_at if server else service.created_at),
            last_known=dict(server.last_known or {}) if server else {},
        )


async def owned_service(
    ctx: AppContext, client_id: str, service_id: int, *, provisioned: bool = True
) -> OwnedService:
    """Ownership re-check for one request; with ``provisioned`` also demand a server (409 if none)."""
    owned = await owned_row(ctx, client_id, service_id)
    if provisioned and not owned.provisioned:
        what = {
            "pending": "is still being ordered",
            "provisioning": "is being set up",
            "unknown": "is being checked by our staff",
            "failed": "could not be set up",
        }.get(owned.status, "has no server yet")
        raise NotProvisioned(
            f"This service {what}. The server panels appear once it is ready; "
            "reload this page in a few minutes or contact support if it stays like this.",
            details={"status": owned.status},
        )
    return owned


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    id: int
    label: str
    status: str
    product_name: str | None


async def client_services(ctx: AppContext, client_id: str) -> list[ServiceSummary]:
    """The client's services for the switcher (terminated ones left out)."""
    async with ctx.db.read() as session:
        rows = (
            await session.execute(
                select(Service, Server, Product)
                .outerjoin(Server, Service.server_id == Server.id)
                .outerjoin(Product, Service.product_id == Product.id)
                .where(Service.client_id == client_id, Service.status != "terminated")
                .order_by(Service.id)
            )
        ).all()
    return [
        ServiceSummary(
            id=svc.id,
            label=(srv.name or srv.hostname if srv else None) or f"#{svc.id}",
            status=svc.status,
            product_name=prod.name if prod else None,
        )
        for svc, srv, prod in rows
    ]


# --- reading the platform ---------------------------------------------------------------------------


async def _cached(ctx: AppContext, key: str, ttl: float, fetch: Callable[[], Awaitable[T]]) -> T:
    return await ctx.cache.get_or_fetch(key, ttl, fetch)


def _upstream(exc: Exception, what: str) -> ServiceError:
    if isinstance(exc, ServiceError):
        return exc
    return UpstreamError(f"The platform could not {what} right now; try again in a minute.")


async def server_info(ctx: AppContext, owned: OwnedService, *, fresh: bool = False) -> dict[str, Any]:
    """The platform's view of the server (cached ``INFO_TTL``; ``fresh`` = state polling, short TTL)."""
    platform_id = owned.platform_id
    assert platform_id is not None

    async def fetch() -> dict[str, Any]:
        async with open_driver(ctx, platform_id) as (driver, _):
            # Live: some platforms (VirtFusion) know the power state only from the hypervisor.
            info: ServerInfo = await driver.server_info(owned.ref, live=True)
        return info.model_dump(mode="json")

    key = f"portal:{'state' if fresh else 'info'}:{owned.server_id}"
    return await _cached(ctx, key, STATE_TTL if fresh else INFO_TTL, fetch)


async def forget_server(ctx: AppContext, owned: OwnedService) -> None:
    """Drop cached reads after an action so the next poll shows the change."""
    for key in ("info", "state", "stats", "backups"):
        await ctx.cache.delete(f"portal:{key}:{owned.server_id}")


@dataclass(frozen=True, slots=True)
class Overview:
    state: str
    hostname: str | None
    name: str | None
    ipv4: list[str]
    ipv6: list[str]
    os_name: str | None
    kernel: str | None
    location: str | None
    country: str | None
    created_at: dt.datetime
    traffic_used: int | None
    traffic_limit: int | None
    maintenance: bool
    cpu_cores: int | None
    memory_mb: int | None
    disk_gb: int | None
    stale: bool


def _country_flag(code: str | None) -> str | None:
    if not code or len(code) != 2 or not code.isalpha():
        return None
    return "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in code.upper())


async def _template_name(ctx: AppContext, owned: OwnedService, template: Any) -> str | None:
    """A readable OS name for the installed template when the platform reports only its number.

    Names (``debian-12``) are shown as they are. A numeric id is looked up in the product's gallery
    *if it is cached* (sign-in and the reinstall page fetch it): the overview itself never spends an
    upstream call on a label, so it shows the number until the gallery is known.
    """
    if template is None or not str(template).isdigit():
        return str(template) if template is not None else None
    items = await ctx.cache.get(_templates_key(owned)) or []
    names = {str(item.get("id")): str(item.get("name")) for item in items if isinstance(item, dict)}
    return names.get(str(template), str(template))


async def warm_gallery(ctx: AppContext, owned: OwnedService) -> None:
    """Fetch the product's OS list at sign-in (one call per plan per ``TEMPLATES_TTL``) so the
    overview can name the OS without an upstream call; best effort, at most ``WARM_SECONDS``."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(os_gallery(ctx, owned), WARM_SECONDS)


async def overview(ctx: AppContext, owned: OwnedService) -> Overview:
    """Everything the server overview shows, from one (cached) platform read."""
    stale = False
    try:
        info = await server_info(ctx, owned)
    except Exception:
        info = {}
        stale = True
    raw: dict[str, Any] = info.get("raw") or {}
    known = owned.last_known
    # The product's location wins: operators name it for customers ("London"), platforms for staff.
    location = owned.product_settings.get("location") or info.get("location") or known.get("location")
    country = owned.product_settings.get("country") or known.get("country")
    maintenance = bool(info.get("maintenance") if info else known.get("maintenance"))
    traffic = raw.get("traffic") if isinstance(raw.get("traffic"), dict) else {}
    limit_gb = owned.plan.get("traffic_gb")
    template = info.get("os_template") or known.get("os_template")
    return Overview(
        state=str(info.get("state") or owned.server_state or "unknown"),
        hostname=info.get("hostname") or owned.hostname,
        name=info.get("name") or owned.name,
        ipv4=list(info.get("ipv4") or known.get("ipv4") or []),
        ipv6=list(info.get("ipv6") or known.get("ipv6") or []),
        os_name=info.get("os_name") or await _template_name(ctx, owned, template),
        kernel=info.get("kernel"),
        location=str(location) if location else None,
        country=_country_flag(str(country)) if country else None,
        created_at=owned.created_at,
        traffic_used=traffic.get("used_bytes") if traffic else None,
        # None = the plan does not say (the traffic panel fills in the platform's figure); 0 = unmetered.
        traffic_limit=None if limit_gb is None else int(limit_gb) * 1024**3,
        maintenance=maintenance,
        cpu_cores=info.get("cpu_cores") or owned.plan.get("cpu_cores"),
        memory_mb=info.get("memory_mb") or owned.plan.get("memory_mb"),
        disk_gb=info.get("disk_gb") or owned.plan.get("disk_gb"),
        stale=stale,
    )


async def live_stats(ctx: AppContext, owned: OwnedService) -> dict[str, Any]:
    """CPU, memory, disk I/O and filesystems (pseudo filesystems filtered out)."""
    platform_id = owned.platform_id
    assert platform_id is not None

    async def fetch() -> dict[str, Any]:
        async with open_driver(ctx, platform_id) as (driver, _):
            info = await driver.server_info(owned.ref, live=True)
        raw = info.raw or {}
        filesystems = [
            fs
            for fs in (raw.get("filesystems") or [])
            if isinstance(fs, dict) and str(fs.get("type", "")).lower() not in PSEUDO_FILESYSTEMS
        ]
        return {
            "state": info.state,
            "stats": dict(info.stats),
            "filesystems": filesystems,
            "at": utcnow().isoformat(),
        }

    try:
        return await _cached(ctx, f"portal:stats:{owned.server_id}", STATS_TTL, fetch)
    except Exception as exc:
        raise _upstream(exc, "report live statistics") from exc


async def traffic(ctx: AppContext, owned: OwnedService) -> dict[str, Any]:
    """This period's rx/tx and limit, and the chart's months (cached ``TRAFFIC_TTL``).

    ``months`` runs oldest first over the last 12 calendar months (see :func:`traffic_months`), so
    the chart and its text alternative read the same list. ``estimated`` is set when the platform
    has no accounting and the driver estimated the figures (Proxmox).
    """
    platform_id = owned.platform_id
    assert platform_id is not None

    async def fetch() -> dict[str, Any]:
        async with open_driver(ctx, platform_id) as (driver, _):
            report: TrafficReport = await driver.traffic(owned.ref)
        return {
            "rx": report.rx_bytes,
            "tx": report.tx_bytes,
            "limit": report.limit_bytes or 0,
            "period_start": report.period_start.isoformat(),
            "estimated": report.estimated,
            "months": traffic_months(report, owned.created_at),
        }

    try:
        return await _cached(ctx, f"portal:traffic:{owned.server_id}", TRAFFIC_TTL, fetch)
    except Exception as exc:
        raise _upstream(exc, "report traffic") from exc


def traffic_months(report: TrafficReport, created: dt.datetime | None) -> list[dict[str, Any]]:
    """One entry per month for the chart, oldest first, ending with the current period's month.

    A month is named by the month its period starts in (VirtFusion's periods run from the creation
    day, e.g. the 6th to the 5th, and are shown under the month they begin in). Months the platform
    reported nothing for count as 0; months before the server existed are left out - the earlier of
    our own record of its creation and the platform's oldest period decides, so an imported server
    keeps the history its platform has.
    """
    history = report.history
    by_month: dict[str, tuple[int, int]] = {}
    for month in history:
        rx, tx = by_month.get(month_key(month.period_start), (0, 0))
        by_month[month_key(month.period_start)] = (rx + month.rx_bytes, tx + month.tx_bytes)
    oldest = min(m.period_start for m in history)
    born = _aware(created) if created is not None else oldest
    slots = month_slots(report.period_start, min(born, oldest), TRAFFIC_HISTORY_MONTHS)
    out: list[dict[str, Any]] = []
    for slot in slots:
        rx, tx = by_month.get(month_key(slot), (0, 0))
        out.append({"month": month_key(slot), "rx": rx, "tx": tx})
    return out


def _aware(value: dt.datetime) -> dt.datetime:
    """Database timestamps may come back naive (SQLite); they are stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class GalleryEntry:
    id: str
    name: str
    category: str
    eol: bool
    takes_ssh_keys: bool


def _templates_key(owned: OwnedService) -> str:
    """The gallery's cache key: per platform and the plan fields that choose the templates."""
    plan = json.dumps(
        {k: owned.plan.get(k) for k in ("package_id", "os_templates")}, sort_keys=True, default=str
    )
    return f"portal:templates:{owned.platform_id}:{hashlib.sha256(plan.encode()).hexdigest()[:16]}"


async def os_gallery(ctx: AppContext, owned: OwnedService) -> dict[str, list[GalleryEntry]]:
    """Templates the product allows, grouped by category (family) for the rebuild gallery."""
    platform_id = owned.platform_id
    assert platform_id is not None

    async def fetch() -> list[dict[str, Any]]:
        async with open_driver(ctx, platform_id) as (driver, _):
            templates: list[OsTemplate] = await driver.os_templates(owned.plan)
        return [t.model_dump(mode="json") for t in templates]

    try:
        items = await _cached(ctx, _templates_key(owned), TEMPLATES_TTL, fetch)
    except Exception as exc:
        raise _upstream(exc, "list operating systems") from exc
    groups: dict[str, list[GalleryEntry]] = {}
    for item in items:
        features = set(item.get("features") or ())
        category = str(item.get("family") or "Other")
        groups.setdefault(category, []).append(
            GalleryEntry(
                id=str(item["id"]),
                name=str(item["name"]),
                category=category,
                eol="eol" in features,
                takes_ssh_keys="no_ssh_keys" not in features,
            )
        )
    return dict(sorted(groups.items()))


async def backups(ctx: AppContext, owned: OwnedService) -> list[dict[str, Any]]:
    platform_id = owned.platform_id
    assert platform_id is not None

    async def fetch() -> list[dict[str, Any]]:
        async with open_driver(ctx, platform_id) as (driver, _):
            items = await driver.backups(owned.ref)
        return [b.model_dump(mode="json") for b in sorted(items, key=lambda b: b.created_at, reverse=True)]

    try:
        return await _cached(ctx, f"portal:backups:{owned.server_id}", BACKUPS_TTL, fetch)
    except Exception as exc:
        raise _upstream(exc, "list backups") from exc


# --- actions ---------------------------------------------------------------------------------------


def client_actor(owned: OwnedService, ip: str | None = None) -> Actor:
    return Actor(type="client", id=owned.client_id, ip=ip)


def check_hostname(value: str) -> str:
    """RFC 1123 host name: labels of letters, digits and inner hyphens, 1-63 each, 253 in all."""
    name = value.strip().rstrip(".").lower()
    if not name or len(name) > 253:
        raise Invalid("The host name must be 1 to 253 characters long.", field="hostname")
    for label in name.split("."):
        if not HOSTNAME_LABEL.match(label):
            raise Invalid(
                "Each part of the host name may hold letters, digits and hyphens (not at either end), "
                "1 to 63 characters.",
                field="hostname",
            )
    return name


def check_display_name(value: str) -> str:
    """Free text up to 63 printable characters (no control or bidi-override characters)."""
    name = value.strip()
    if len(name) > 63:
        raise Invalid("The display name may be at most 63 characters.", field="name")
    if any(
        not ch.isprintable() or ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" for ch in name
    ):
        raise Invalid("The display name may only hold printable characters.", field="name")
    return name


async def power(ctx: AppContext, owned: OwnedService, action: PowerAction, actor: Actor) -> None:
    await lifecycle.power_service(ctx, owned.id, action, actor)
    await forget_server(ctx, owned)


async def rename(ctx: AppContext, owned: OwnedService, hostname: str, name: str | None, actor: Actor) -> None:
    host = check_hostname(hostname)
    display = check_display_name(name) if name is not None else None
    await lifecycle.rename_service(ctx, owned.id, actor, hostname=host, name=display or None)
    await forget_server(ctx, owned)


async def reset_password(ctx: AppContext, owned: OwnedService, actor: Actor) -> tuple[str, str]:
    """(username, password) - shown to the client once, never stored in the browser."""
    out = await lifecycle.reset_password(ctx, owned.id, actor)
    return out.username or "root", out.password or ""


async def rebuild(
    ctx: AppContext, owned: OwnedService, template_id: str, ssh_keys: list[str], actor: Actor
) -> int | None:
    """Reinstall the server with ``template_id`` (which must be offered for this product).

    Returns the id of the job that carries the reinstall, so callers can point at its progress.
    """
    gallery = await os_gallery(ctx, owned)
    offered = {entry.id: entry for entries in gallery.values() for entry in entries}
    if template_id not in offered:
        raise Invalid("Choose one of the operating systems offered for this server.", field="os")
    keys = [k.strip() for k in ssh_keys if k.strip()]
    for key in keys:
        if not re.match(r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-\S+) [A-Za-z0-9+/=]+( .*)?$", key):
            raise Invalid("That does not look like an SSH public key (ssh-ed25519 AAAA...).", field="ssh_key")
    # The provisioning service owns the reinstall: a durable job on every platform (Proxmox queues
    # its rebuild workflow, the others start the build and follow its task), and the audit row.
    out = await lifecycle.rebuild_service(ctx, owned.id, actor, os_template=template_id, ssh_keys=tuple(keys))
    await forget_server(ctx, owned)
    return out.job_id


# --- panel sign-in ---------------------------------------------------------------------------------

PANEL_ORIGIN_TTL = 600.0


def has_panel_login(platform_type: str | None) -> bool:
    """Whether the service's platform has its own panel the client can be signed in to (VirtFusion)."""
    if not platform_type:
        return False
    try:
        return callable(getattr(registry.driver_class(platform_type), "sso_url", None))
    except Exception:
        return False


async def panel_origin(ctx: AppContext, owned: OwnedService) -> str | None:
    """``scheme://host`` of the platform's panel, for the page's ``form-action`` (cached; no API call).

    Browsers check the redirect that answers a form against the submitting page's ``form-action``,
    so the page offering panel sign-in must name the one origin the redirect may go to.
    """
    if not has_panel_login(owned.platform_type) or owned.platform_id is None:
        return None
    platform_id = owned.platform_id

    async def fetch() -> str:
        async with open_driver(ctx, platform_id) as (driver, _):
            parts = urlsplit(str(getattr(driver, "panel_url", "") or ""))
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""

    origin = await _cached(ctx, f"portal:panel-origin:{platform_id}", PANEL_ORIGIN_TTL, fetch)
    return origin or None


async def panel_login(ctx: AppContext, owned: OwnedService, actor: Actor) -> str:
    """A one-time sign-in URL to the platform's own panel for the owner of ``owned``.

    The driver asks the platform for the login token and refuses any URL that is not on the
    configured panel host, so the portal never redirects a client to a host the platform named.
    """
    if not has_panel_login(owned.platform_type) or owned.platform_id is None:
        raise NotFound("This server's platform has no control panel to sign in to.")
    try:
        async with open_driver(ctx, owned.platform_id) as (driver, _):
            url = str(await driver.sso_url(owned.client_id, owned.ref))  # type: ignore[attr-defined]
    except ServiceError:
        raise
    except Exception as exc:
        raise _upstream(exc, "sign you in to the control panel") from exc
    async with ctx.db.session() as session:
        await record(session, actor, "service.panel_login", "service", owned.id, {})
    return url


# --- console ---------------------------------------------------------------------------------------

CONSOLE_TICKET_KEY = "portal:console:"


async def open_console(ctx: AppContext, owned: OwnedService, actor: Actor) -> tuple[str, ConsoleTicket]:
    """Ask the platform for a fresh console (which rotates its token) and wrap it in a relay ticket.

    The platform's ticket stays on the server: the browser receives only a random relay ticket that
    the console websocket accepts once within ``CONSOLE_TICKET_TTL`` seconds
    (:mod:`vpsbridge.services.console_relay` opens the platform's stream for it).
    """
    platform_id = owned.platform_id
    assert platform_id is not None
    try:
        async with open_driver(ctx, platform_id) as (driver, _):
            ticket = await driver.console(owned.ref)
    except ServiceError:
        raise
    except Exception as exc:
        raise _upstream(exc, "open the console") from exc
    relay = secrets.token_urlsafe(24)
    await ctx.cache.set(
        CONSOLE_TICKET_KEY + relay,
        {
            # Sealed: the cache may be a shared Redis, and the ticket holds the console password.
            "ticket": ctx.secrets.encrypt_json(ticket.model_dump(mode="json")),
            "service_id": owned.id,
            "client_id": owned.client_id,
            "platform_type": owned.platform_type,
            "platform_id": owned.platform_id,
        },
        CONSOLE_TICKET_TTL,
    )
    async with ctx.db.session() as session:
        await record(session, actor, "service.console", "service", owned.id, {})
    return relay, ticket


async def claim_console(ctx: AppContext, relay: str) -> dict[str, Any] | None:
    """Use a relay ticket once (the first claimant wins; later ones and expired tickets get ``None``)."""
    if not relay or len(relay) > 100:
        return None
    data = await ctx.cache.get(CONSOLE_TICKET_KEY + relay)
    if data is None:
        return None
    if not await ctx.cache.debounce(CONSOLE_TICKET_KEY + "used:" + relay, CONSOLE_TICKET_TTL * 2):
        return None
    await ctx.cache.delete(CONSOLE_TICKET_KEY + relay)
    return dict(data)
