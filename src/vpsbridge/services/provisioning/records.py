"""Service and server records: finding them, describing them, and changing their status.

A service is named by its own id (``12`` or ``"12"``) or by the billing system's service id
(``"billing:345"``), because the billing bridge only knows the latter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsbridge.services.errors import Invalid, NotFound
from vpsbridge.services.provisioning.schemas import ServerOut, ServiceOut
from vpsbridge.store.db import Database
from vpsbridge.store.models import Platform, Product, Server, Service, utcnow

ServiceRef = int | str
BILLING_PREFIX = "billing:"


def by_billing(billing_service_id: str | int) -> str:
    """The reference for a service known by its billing service id."""
    return f"{BILLING_PREFIX}{billing_service_id}"


async def find_service(session: AsyncSession, ref: ServiceRef, *, lock: bool = False) -> Service:
    text = str(ref).strip()
    query = select(Service)
    if text.startswith(BILLING_PREFIX):
        query = query.where(Service.billing_service_id == text[len(BILLING_PREFIX) :])
    elif text.isdigit():
        query = query.where(Service.id == int(text))
    else:
        raise Invalid(f"a service is named by its id or billing:<billing service id>, not {text!r}")
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no service {text}")
    return row


def addresses(server: Server | None) -> tuple[list[str], list[str]]:
    if server is None:
        return [], []
    known = server.last_known or {}
    return list(known.get("ipv4") or []), list(known.get("ipv6") or [])


def server_out(server: Server) -> ServerOut:
    v4, v6 = addresses(server)
    return ServerOut(
        id=server.id,
        platform_id=server.platform_id,
        external_id=server.external_id,
        node=server.node,
        hostname=server.hostname,
        name=server.name,
        state=server.state,
        ipv4=v4,
        ipv6=v6,
        has_credentials=server.credentials_enc is not None,
    )


async def service_out(session: AsyncSession, service: Service) -> ServiceOut:
    product = await session.get(Product, service.product_id) if service.product_id else None
    server = await session.get(Server, service.server_id) if service.server_id else None
    platform_id = server.platform_id if server else (product.platform_id if product else None)
    platform = await session.get(Platform, platform_id) if platform_id else None
    life = service.lifecycle or {}
    return ServiceOut(
        id=service.id,
        billing_service_id=service.billing_service_id,
        client_id=service.client_id,
        product_id=service.product_id,
        product_name=product.name if product else None,
        platform_id=platform.id if platform else None,
        platform_name=platform.name if platform else None,
        platform_type=platform.type if platform else None,
        status=service.status,
        options=dict(service.options or {}),
        last_error=service.last_error,
        warnings=list(life.get("warnings") or []),
        job_id=life.get("job_id"),
        server=server_out(server) if server else None,
        created_at=service.created_at,
        updated_at=service.updated_at,
    )


async def set_service(
    db: Database | AsyncSession,
    service_id: int,
    *,
    expect: tuple[str, ...] | None = None,
    lifecycle: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    """Update a service row (``status``, ``last_error`` ...); with ``expect`` only from those statuses.

    Returns whether the row changed: a compare-and-set, so two workers never both move a service
    out of the same status. ``lifecycle`` is merged into the bookkeeping dict, not replaced.
    """

    async def run(session: AsyncSession) -> bool:
        row = await session.get(Service, service_id, with_for_update=True)
        if row is None or (expect is not None and row.status not in expect):
            return False
        for key, value in values.items():
            setattr(row, key, value)
        if lifecycle:
            row.lifecycle = {**(row.lifecycle or {}), **lifecycle}
        row.updated_at = utcnow()
        return True

    if isinstance(db, AsyncSession):
        return await run(db)
    async with db.session() as session:
        return await run(session)


async def set_server(db: Database | AsyncSession, server_id: int, **values: Any) -> None:
    """Update a server row; ``last_known`` given as a dict is merged into the cached answer."""
    known = values.pop("last_known", None)

    async def run(session: AsyncSession) -> None:
        row = await session.get(Server, server_id, with_for_update=True)
        if row is None:
            return
        for key, value in values.items():
            setattr(row, key, value)
        if known is not None:
            row.last_known = {**(row.last_known or {}), **known}

    if isinstance(db, AsyncSession):
        await run(db)
        return
    async with db.session() as session:
        await run(session)


async def known_external_ids(session: AsyncSession, platform_id: int) -> set[str]:
    rows = await session.execute(
        select(Server.external_id).where(Server.platform_id == platform_id, Server.external_id.is_not(None))
    )
    return {str(r[0]) for r in rows}


async def release_server_addresses(session: AsyncSession, server_id: int) -> int:
    """Free the IPAM addresses assigned to a server that is confirmed gone; returns how many."""
    from vpsbridge.store.models import IpAddress

    # One row per assigned address: releasing is deleting the row (the pool's range stays).
    result = await session.execute(delete(IpAddress).where(IpAddress.server_id == server_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
