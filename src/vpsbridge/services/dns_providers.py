"""DNS providers: where forward and reverse (PTR) records are written.

Like platforms, credentials are write-only and encrypted at rest. A provider that still has zones
configured is refused on delete: the zones say which records it is responsible for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Conflict, Invalid
from vpsbridge.services.inputs import changes, parse_input
from vpsbridge.services.lookup import Ref, check_name, ensure_unique_name, find_by_ref, flush_or_conflict
from vpsbridge.services.schemas import DnsProviderCreate, DnsProviderOut, DnsProviderUpdate
from vpsbridge.store.models import DnsProvider, DnsZone

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

LABEL = "DNS provider"
_NOT_NULL = ("name", "type", "settings", "enabled")


def dns_provider_out(row: DnsProvider, zone_count: int) -> DnsProviderOut:
    return DnsProviderOut(
        id=row.id,
        name=row.name,
        type=row.type,
        url=row.url,
        has_credentials=row.credentials_enc is not None,
        settings=dict(row.settings or {}),
        enabled=row.enabled,
        zone_count=zone_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _zone_count(session: AsyncSession, provider_id: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(DnsZone).where(DnsZone.provider_id == provider_id)
    )
    return int(count or 0)


async def create_dns_provider(
    ctx: AppContext, data: DnsProviderCreate | Mapping[str, Any], actor: Actor
) -> DnsProviderOut:
    spec = parse_input(DnsProviderCreate, data)
    check_name(spec.name)
    async with ctx.db.session() as session:
        await ensure_unique_name(session, DnsProvider, spec.name, label=LABEL)
        row = DnsProvider(
            name=spec.name,
            type=spec.type,
            url=spec.url,
            credentials_enc=ctx.secrets.encrypt_json(spec.credentials) if spec.credentials else None,
            settings=spec.settings,
            enabled=spec.enabled,
        )
        session.add(row)
        await flush_or_conflict(session, f"a DNS provider named {spec.name!r} already exists")
        details = spec.model_dump(exclude={"credentials"})
        details["has_credentials"] = row.credentials_enc is not None
        await record(session, actor, "dns_provider.create", "dns_provider", row.id, details)
        return dns_provider_out(row, 0)


async def list_dns_providers(ctx: AppContext) -> list[DnsProviderOut]:
    async with ctx.db.session() as session:
        counts = dict(
            (
                await session.execute(select(DnsZone.provider_id, func.count()).group_by(DnsZone.provider_id))
            ).all()
        )
        rows = (await session.execute(select(DnsProvider).order_by(DnsProvider.name))).scalars().all()
        return [dns_provider_out(r, int(counts.get(r.id, 0))) for r in rows]


async def get_dns_provider(ctx: AppContext, ref: Ref) -> DnsProviderOut:
    async with ctx.db.session() as session:
        row = await find_by_ref(session, DnsProvider, ref, label=LABEL)
        return dns_provider_out(row, await _zone_count(session, row.id))


async def update_dns_provider(
    ctx: AppContext, ref: Ref, data: DnsProviderUpdate | Mapping[str, Any], actor: Actor
) -> DnsProviderOut:
    """Change the given fields; ``credentials`` replaces the stored secrets (``null`` removes them)."""
    patch = changes(parse_input(DnsProviderUpdate, data))
    for field in _NOT_NULL:
        if field in patch and patch[field] is None:
            raise Invalid(f"{field} cannot be empty", field=field)
    if "name" in patch:
        check_name(patch["name"])
    async with ctx.db.session() as session:
        row = await find_by_ref(session, DnsProvider, ref, label=LABEL)
        if "name" in patch:
            await ensure_unique_name(session, DnsProvider, patch["name"], label=LABEL, exclude_id=row.id)
        for field, value in patch.items():
            if field == "credentials":
                row.credentials_enc = ctx.secrets.encrypt_json(value) if value else None
            else:
                setattr(row, field, value)
        await flush_or_conflict(session, f"a DNS provider named {row.name!r} already exists")
        details = {"fields": sorted(patch), "values": {k: v for k, v in patch.items() if k != "credentials"}}
        await record(session, actor, "dns_provider.update", "dns_provider", row.id, details)
        return dns_provider_out(row, await _zone_count(session, row.id))


async def delete_dns_provider(ctx: AppContext, ref: Ref, actor: Actor) -> None:
    async with ctx.db.session() as session:
        row = await find_by_ref(session, DnsProvider, ref, label=LABEL)
        zones = await _zone_count(session, row.id)
        if zones:
            raise Conflict(
                f"DNS provider {row.name!r} still has {zones} zone{'s' if zones != 1 else ''} configured; "
                "remove them first",
                details={"dns_provider_id": row.id},
            )
        await record(session, actor, "dns_provider.delete", "dns_provider", row.id, {"name": row.name})
        await session.delete(row)


async def dns_provider_credentials(ctx: AppContext, ref: Ref) -> dict[str, Any]:
    """The decrypted credentials of a provider, for building its client (never for display)."""
    async with ctx.db.session() as session:
        row = await find_by_ref(session, DnsProvider, ref, label=LABEL)
        return ctx.secrets.decrypt_json(row.credentials_enc) if row.credentials_enc else {}
