"""Platforms: the hypervisor control planes servers are created on.

Credentials are write-only: they are encrypted with the context's :class:`SecretBox` on the way in
and never leave the service except to build a driver (``test_platform`` and, later, workflows via
:func:`platform_credentials`). Every mutation writes its audit row in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Conflict, Invalid, UpstreamError
from vpsbridge.services.inputs import changes, parse_input
from vpsbridge.services.lookup import Ref, check_name, ensure_unique_name, find_by_ref, flush_or_conflict
from vpsbridge.services.schemas import PlatformCreate, PlatformOut, PlatformUpdate
from vpsbridge.store.models import IpPool, Platform, Product, Server

if TYPE_CHECKING:
    from vpsbridge.platforms.base import ConnectionReport
    from vpsbridge.services.context import AppContext

LABEL = "platform"


def platform_out(row: Platform) -> PlatformOut:
    return PlatformOut(
        id=row.id,
        name=row.name,
        type=row.type,
        url=row.url,
        has_credentials=row.credentials_enc is not None,
        verify_tls=row.verify_tls,
        ca_bundle=row.ca_bundle,
        settings=dict(row.settings or {}),
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def known_platform_types() -> list[str]:
    """Platform types the installed drivers support, as the driver registry reports them."""
    from vpsbridge.platforms import registry

    return registry.driver_types()


def _check_type(type_: str) -> None:
    known = known_platform_types()
    if type_ not in known:
        raise Invalid(
            f"unknown platform type {type_!r}; known types: {', '.join(known) or '(none installed)'}",
            field="type",
        )


async def create_platform(
    ctx: AppContext, data: PlatformCreate | Mapping[str, Any], actor: Actor
) -> PlatformOut:
    spec = parse_input(PlatformCreate, data)
    check_name(spec.name)
    _check_type(spec.type)
    async with ctx.db.session() as session:
        await ensure_unique_name(session, Platform, spec.name, label=LABEL)
        row = Platform(
            name=spec.name,
            type=spec.type,
            url=spec.url,
            credentials_enc=ctx.secrets.encrypt_json(spec.credentials) if spec.credentials else None,
            verify_tls=spec.verify_tls,
            ca_bundle=spec.ca_bundle,
            settings=spec.settings,
            enabled=spec.enabled,
        )
        session.add(row)
        await flush_or_conflict(session, f"a platform named {spec.name!r} already exists")
        details = spec.model_dump(exclude={"credentials"})
        details["has_credentials"] = row.credentials_enc is not None
        await record(session, actor, "platform.create", LABEL, row.id, details)
        return platform_out(row)


async def list_platforms(ctx: AppContext) -> list[PlatformOut]:
    async with ctx.db.session() as session:
        rows = (await session.execute(select(Platform).order_by(Platform.name))).scalars().all()
        return [platform_out(r) for r in rows]


async def get_platform(ctx: AppContext, ref: Ref) -> PlatformOut:
    async with ctx.db.session() as session:
        return platform_out(await find_by_ref(session, Platform, ref, label=LABEL))


async def update_platform(
    ctx: AppContext, ref: Ref, data: PlatformUpdate | Mapping[str, Any], actor: Actor
) -> PlatformOut:
    """Change the given fields; ``credentials`` replaces the stored secrets (``null`` removes them)."""
    patch = changes(parse_input(PlatformUpdate, data))
    for required in ("name", "type", "url", "verify_tls", "settings", "enabled"):
        if required in patch and patch[required] is None:
            raise Invalid(f"{required} cannot be empty", field=required)
    if "name" in patch:
        check_name(patch["name"])
    if "type" in patch:
        _check_type(patch["type"])
    async with ctx.db.session() as session:
        row = await find_by_ref(session, Platform, ref, label=LABEL)
        if "name" in patch:
            await ensure_unique_name(session, Platform, patch["name"], label=LABEL, exclude_id=row.id)
        changed: list[str] = []
        for field, value in patch.items():
            if field == "credentials":
                row.credentials_enc = ctx.secrets.encrypt_json(value) if value else None
            else:
                setattr(row, field, value)
            changed.append(field)
        await flush_or_conflict(session, f"a platform named {row.name!r} already exists")
        details: dict[str, Any] = {"fields": sorted(changed)}
        details["values"] = {k: v for k, v in patch.items() if k != "credentials"}
        await record(session, actor, "platform.update", LABEL, row.id, details)
        return platform_out(row)


async def delete_platform(ctx: AppContext, ref: Ref, actor: Actor) -> None:
    """Delete a platform nothing refers to any more (products, servers and IP pools must go first)."""
    async with ctx.db.session() as session:
        row = await find_by_ref(session, Platform, ref, label=LABEL)
        users: list[str] = []
        for model, noun in ((Product, "product"), (Server, "server"), (IpPool, "IP pool")):
            count = await session.scalar(
                select(func.count()).select_from(model).where(model.platform_id == row.id)
            )
            if count:
                users.append(f"{count} {noun}{'s' if count != 1 else ''}")
        if users:
            raise Conflict(
                f"platform {row.name!r} is still used by {', '.join(users)}; remove or move them first",
                details={"platform_id": row.id},
            )
        await record(session, actor, "platform.delete", LABEL, row.id, {"name": row.name})
        await session.delete(row)
        await flush_or_conflict(session, f"platform {row.name!r} is still in use")


async def platform_credentials(ctx: AppContext, ref: Ref) -> dict[str, Any]:
    """The decrypted credentials of a platform, for building its driver (never for display)."""
    async with ctx.db.session() as session:
        row = await find_by_ref(session, Platform, ref, label=LABEL)
        return ctx.secrets.decrypt_json(row.credentials_enc) if row.credentials_enc else {}


async def test_platform(ctx: AppContext, ref: Ref) -> ConnectionReport:
    """Ask the platform whether our URL and credentials work, through its real driver.

    The driver's report says what works and what is missing (e.g. each missing API scope); an
    upstream that cannot be reached at all becomes an :class:`UpstreamError` whose message names it.
    """
    from vpsbridge.http.errors import UpstreamError as HttpUpstreamError
    from vpsbridge.platforms import registry

    async with ctx.db.session() as session:
        row = await find_by_ref(session, Platform, ref, label=LABEL)
        credentials = ctx.secrets.decrypt_json(row.credentials_enc) if row.credentials_enc else {}
        name, type_, url = row.name, row.type, row.url
        verify_tls, ca_bundle, settings = row.verify_tls, row.ca_bundle, dict(row.settings or {})
    _check_type(type_)
    driver = registry.create_driver(
        type_,
        url=url,
        credentials=credentials,
        verify_tls=verify_tls,
        ca_bundle=ca_bundle,
        recorder=ctx.extras.get("upstream_recorder"),
        settings=settings,
    )
    try:
        return await driver.test_connection()
    except HttpUpstreamError as exc:
        raise UpstreamError(f"platform {name!r} ({url}): {exc}") from exc
    finally:
        await driver.aclose()


# Not a test case, whatever its name says: keep pytest from collecting it where it is imported.
test_platform.__test__ = False  # type: ignore[attr-defined]
