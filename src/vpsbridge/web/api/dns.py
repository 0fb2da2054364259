"""``/api/v1`` DNS operations: test a provider, its zones, a server's PTR status and "Set DNS records".

The catalog side (create/update/delete providers) is in :mod:`vpsbridge.web.api.dns_providers`;
these routes act on DNS. Nothing here returns a credential: reports carry the provider's name, type,
version and warnings only.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, Field

from vpsbridge.services import dns as rdns
from vpsbridge.web.api.auth import ApiActor, AuditedRoute, Authorize
from vpsbridge.web.deps import Ctx

router = APIRouter(tags=["dns"], route_class=AuditedRoute, dependencies=[Depends(Authorize())])


class ProviderTest(BaseModel):
    provider: str
    type: str
    ok: bool
    message: str
    version: str | None
    zones: list[str]
    warnings: list[str]


class Zone(BaseModel):
    id: int
    provider_id: int
    provider: str
    name: str
    kind: str
    enabled: bool


class ZoneSync(BaseModel):
    provider: str
    added: list[str]
    removed: list[str]
    kept: list[str]
    warnings: list[str]


class PtrLine(BaseModel):
    ip: str | None
    status: str = Field(description="ok, unverified, missing, no_zone, error, disabled, or subnet")
    ptr: str | None
    ttl: int | None
    zone: str | None
    subnet: str | None
    message: str


class SyncRequest(BaseModel):
    mode: Literal["provision", "force", "delete"] = Field(
        default="provision",
        description="provision: write all PTRs and forward records; force: also reset custom PTRs "
        "(reconcile with force); delete: remove them",
    )


class Enqueued(BaseModel):
    job_id: int
    kind: str


@router.post("/dns-providers/{ref}/test", summary="Test a DNS provider (version, zones, warnings)")
async def test_provider(ctx: Ctx, ref: str) -> ProviderTest:
    """An unreachable provider or refused credentials is a 502 ``upstream_error`` saying why."""
    report = await rdns.test_dns_provider(ctx, ref)
    return ProviderTest(**report.__dict__)


@router.get("/dns-providers/{ref}/zones", summary="Zones configured for a DNS provider")
async def provider_zones(ctx: Ctx, ref: str) -> list[Zone]:
    return [Zone(**z.__dict__) for z in await rdns.list_zones(ctx, ref)]


@router.post("/dns-providers/{ref}/zones/sync", summary="Discover the provider's zones into the catalog")
async def sync_provider_zones(ctx: Ctx, actor: ApiActor, ref: str) -> ZoneSync:
    return ZoneSync(**(await rdns.sync_zones(ctx, ref, actor)).__dict__)


@router.get("/dns-zones", summary="Every configured DNS zone")
async def all_zones(ctx: Ctx) -> list[Zone]:
    return [Zone(**z.__dict__) for z in await rdns.list_zones(ctx)]


@router.get("/servers/{server_id}/ptr", summary="Reverse DNS status of a server's addresses")
async def server_ptrs(
    ctx: Ctx,
    server_id: int,
    ip: list[str] = Query(default_factory=list, description="Extra hosts inside the server's subnets"),
) -> list[PtrLine]:
    return [PtrLine(**row.as_dict()) for row in await rdns.ptr_overview(ctx, server_id, ip)]


@router.post(
    "/servers/{server_id}/dns-sync",
    status_code=status.HTTP_202_ACCEPTED,
    summary='Queue "Set DNS records" for a server',
)
async def enqueue_sync(
    ctx: Ctx, actor: ApiActor, server_id: int, body: SyncRequest | None = None
) -> Enqueued:
    """Returns the job; follow it at ``/api/v1/jobs/{job_id}`` (log and summary)."""
    from vpsbridge.services.audit import record
    from vpsbridge.services.dns import load_target

    await load_target(ctx, server_id)  # 404 for an unknown server
    mode = (body or SyncRequest()).mode
    extra: dict[str, Any] = {}
    if mode == "delete":
        extra["target"] = (await load_target(ctx, server_id)).as_dict()
    job_id = await rdns.enqueue_dns_sync(ctx, server_id, mode, extra=extra)
    async with ctx.db.session() as session:
        await record(session, actor, "dns.sync", "server", server_id, {"mode": mode, "job_id": job_id})
    return Enqueued(job_id=job_id, kind=rdns.DNS_SYNC)
