"""From the catalog to live DNS providers: building them, testing them, and the zones they serve.

Providers are catalog rows with encrypted credentials; every use decrypts them, builds the provider
with the process's upstream recorder (so each call lands, redacted, in the request log) and closes it
afterwards. Zones live in ``dns_zones``: a zone discovery asks each provider what it serves and
mirrors that into the table, which is what PTR placement and forward records read, so choosing the
zone of an address never costs a request per provider.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from vpsbridge.core.ipam import build_zone_index, normalize_name, zone_for_name, zone_name_problems
from vpsbridge.dns.base import DnsProvider as LiveProvider
from vpsbridge.dns.errors import DnsConfigError, DnsError
from vpsbridge.dns.registry import create_provider
from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Invalid, UpstreamError
from vpsbridge.services.lookup import Ref, find_by_ref
from vpsbridge.store.models import DnsProvider, DnsZone

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

LABEL = "DNS provider"
#: ``ctx.extras`` key: provider type -> httpx2 transport (lets tests reach an in-process simulator).
EXTRAS_TRANSPORTS = "dns_transports"


@dataclass(frozen=True)
class ProviderRow:
    """What is needed to build a provider, read in one short transaction (credentials decrypted)."""

    id: int
    name: str
    type: str
    url: str | None
    credentials: dict[str, Any]
    settings: dict[str, Any]
    enabled: bool


def _row(ctx: AppContext, row: DnsProvider) -> ProviderRow:
    credentials = ctx.secrets.decrypt_json(row.credentials_enc) if row.credentials_enc else {}
    return ProviderRow(
        row.id, row.name, row.type, row.url, dict(credentials), dict(row.settings or {}), row.enabled
    )


async def provider_row(ctx: AppContext, ref: Ref) -> ProviderRow:
    async with ctx.db.session() as session:
        return _row(ctx, await find_by_ref(session, DnsProvider, ref, label=LABEL))


def build_provider(ctx: AppContext, row: ProviderRow) -> LiveProvider:
    """A live provider for ``row``; a configuration mistake becomes :class:`Invalid` naming the field."""
    transports = ctx.extras.get(EXTRAS_TRANSPORTS) or {}
    try:
        return create_provider(
            row.type,
            url=row.url,
            credentials=row.credentials,
            settings={"name": row.name, **row.settings},
            recorder=ctx.extras.get("upstream_recorder"),
            transport=transports.get(row.type),
        )
    except DnsConfigError as exc:
        raise Invalid(f"DNS provider {row.name!r}: {exc}") from None


@contextlib.asynccontextmanager
async def open_provider(ctx: AppContext, row: ProviderRow) -> AsyncIterator[LiveProvider]:
    provider = build_provider(ctx, row)
    try:
        yield provider
    finally:
        await provider.aclose()


class ProviderPool:
    """Live providers opened on demand during one job or request and closed together.

    A sync touches a handful of providers many times; building each once keeps their zone caches
    and connection pools warm for the whole operation.
    """

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._open: dict[int, LiveProvider] = {}
        self._rows: dict[int, ProviderRow] = {}

    async def get(self, provider_id: int) -> LiveProvider:
        if provider_id not in self._open:
            row = self._rows.get(provider_id) or await provider_row(self.ctx, provider_id)
            self._rows[provider_id] = row
            self._open[provider_id] = build_provider(self.ctx, row)
        return self._open[provider_id]

    def label(self, provider_id: int) -> str:
        row = self._rows.get(provider_id)
        return row.name if row else f"provider {provider_id}"

    async def aclose(self) -> None:
        for provider in self._open.values():
            with contextlib.suppress(Exception):
                await provider.aclose()
        self._open.clear()

    async def __aenter__(self) -> ProviderPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# --- test connection ---------------------------------------------------------------------------


@dataclass
class ProviderTestReport:
    """The answer of "Test connection": never contains a credential."""

    provider: str
    type: str
    ok: bool
    message: str
    version: str | None = None
    zones: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


async def test_dns_provider(ctx: AppContext, ref: Ref) -> ProviderTestReport:
    """Ask the provider whether URL and credentials work; report its version and what to fix.

    Zone names the PTR logic will ignore (a misaligned classless range, a bad label) are added to
    the provider's own warnings (such as a reverse zone without SOA-EDIT-API on PowerDNS).
    """
    row = await provider_row(ctx, ref)
    try:
        async with open_provider(ctx, row) as provider:
            report = await provider.test_connection()
    except DnsError as exc:
        raise UpstreamError(f"DNS provider {row.name!r}: {exc}") from exc
    warnings = list(report.warnings)
    warnings.extend(w for w in zone_name_problems(report.zones) if w not in warnings)
    if not row.enabled:
        warnings.append("this provider is disabled: vpsbridge writes no records through it")
    return ProviderTestReport(
        provider=row.name,
        type=row.type,
        ok=report.ok,
        message=report.message,
        version=report.version,
        zones=list(report.zones),
        warnings=warnings,
    )


test_dns_provider.__test__ = False  # type: ignore[attr-defined]


# --- zones --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneOut:
    id: int
    provider_id: int
    provider: str
    name: str
    kind: str
    enabled: bool


@dataclass
class ZoneSyncReport:
    provider: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def zone_kind(name: str) -> str:
    return "reverse" if normalize_name(name).endswith(("in-addr.arpa.", "ip6.arpa.")) else "forward"


async def sync_zones(ctx: AppContext, ref: Ref, actor: Actor | None = None) -> ZoneSyncReport:
    """Mirror the zones the provider serves into ``dns_zones``.

    Zones that appeared are added, zones the provider no longer lists are removed, and rows that stay
    keep their settings (an operator may have disabled a zone). Nothing changes when the listing fails:
    an unreachable provider must not look like one without zones.
    """
    row = await provider_row(ctx, ref)
    try:
        async with open_provider(ctx, row) as provider:
            listed = [normalize_name(z.name) for z in await provider.zones(refresh=True)]
    except DnsError as exc:
        raise UpstreamError(f"DNS provider {row.name!r}: cannot list zones: {exc}") from exc
    report = ZoneSyncReport(provider=row.name, warnings=zone_name_problems(listed))
    wanted = set(listed)
    async with ctx.db.session() as session:
        rows = (await session.scalars(select(DnsZone).where(DnsZone.provider_id == row.id))).all()
        have = {r.name: r for r in rows}
        for name in sorted(wanted - set(have)):
            session.add(DnsZone(provider_id=row.id, name=name, kind=zone_kind(name), settings={}))
            report.added.append(name)
        for name in sorted(set(have) - wanted):
            await session.delete(have[name])
            report.removed.append(name)
        report.kept = sorted(wanted & set(have))
        if actor is not None and (report.added or report.removed):
            details = {"added": report.added, "removed": report.removed}
            await record(session, actor, "dns_provider.zones_sync", "dns_provider", row.id, details)
    return report


async def list_zones(ctx: AppContext, ref: Ref | None = None) -> list[ZoneOut]:
    async with ctx.db.session() as session:
        query = (
            select(DnsZone, DnsProvider.name)
            .join(DnsProvider, DnsProvider.id == DnsZone.provider_id)
            .order_by(DnsProvider.name, DnsZone.name)
        )
        if ref is not None:
            provider = await find_by_ref(session, DnsProvider, ref, label=LABEL)
            query = query.where(DnsZone.provider_id == provider.id)
        rows = (await session.execute(query)).all()
    return [
        ZoneOut(z.id, z.provider_id, name, z.name, z.kind, bool((z.settings or {}).get("enabled", True)))
        for z, name in rows
    ]


@dataclass(frozen=True)
class ZoneMap:
    """Every configured zone and the provider holding it, for placing addresses and hostnames.

    ``disabled`` holds zones the operator switched off or whose provider is disabled: an address in
    such a zone is reported as ``disabled`` instead of being written.
    """

    provider_of: dict[str, int]
    disabled: frozenset[str]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.provider_of))

    def zone_of_ip(self, ip: str) -> tuple[str, str] | None:
        return build_zone_index(self.names).find(ip)

    def zone_of_name(self, name: str) -> str | None:
        return zone_for_name(name, self.names)


async def load_zone_map(ctx: AppContext) -> ZoneMap:
    """The zone map from ``dns_zones``; providers without any row are discovered first.

    Discovering on first use means a freshly added provider works without a separate "sync zones"
    step; afterwards the table is the source of truth until the operator syncs again.
    """
    async with ctx.db.session() as session:
        providers = (await session.scalars(select(DnsProvider).order_by(DnsProvider.id))).all()
        zones = (await session.scalars(select(DnsZone))).all()
        known = {z.provider_id for z in zones}
        undiscovered = [p.id for p in providers if p.enabled and p.id not in known]
    if undiscovered:
        for provider_id in undiscovered:
            with contextlib.suppress(UpstreamError, Invalid):
                await sync_zones(ctx, provider_id)
        async with ctx.db.session() as session:
            zones = (await session.scalars(select(DnsZone))).all()
    enabled = {p.id: p.enabled for p in providers}
    provider_of: dict[str, int] = {}
    disabled: set[str] = set()
    for zone in sorted(zones, key=lambda z: z.provider_id):
        name = normalize_name(zone.name)
        provider_of.setdefault(name, zone.provider_id)
        if not enabled.get(zone.provider_id, False) or (zone.settings or {}).get("enabled") is False:
            disabled.add(name)
    return ZoneMap(provider_of, frozenset(disabled))


async def set_zone_enabled(ctx: AppContext, zone_id: int, enabled: bool, actor: Actor) -> None:
    """Switch PTR/forward writes for one zone on or off (kept across zone syncs)."""
    async with ctx.db.session() as session:
        zone = await session.get(DnsZone, zone_id)
        if zone is None:
            raise Invalid(f"no DNS zone with id {zone_id}")
        zone.settings = {**(zone.settings or {}), "enabled": enabled}
        await record(session, actor, "dns_zone.update", "dns_zone", zone.id, {"enabled": enabled})


def group_by_provider(zone_map: ZoneMap, zones: Sequence[str]) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for zone in zones:
        grouped.setdefault(zone_map.provider_of[normalize_name(zone)], []).append(zone)
    return grouped
