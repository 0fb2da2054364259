"""``/api/v1/dns-providers``: PowerDNS, Cloudflare and HestiaCP accounts for PTR and forward records.

Credentials are write-only, as for platforms.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from vpsbridge.services import dns_providers
from vpsbridge.services.schemas import DnsProviderCreate, DnsProviderOut, DnsProviderUpdate
from vpsbridge.web.api.auth import ApiActor, AuditedRoute, Authorize
from vpsbridge.web.deps import Ctx

router = APIRouter(
    prefix="/dns-providers",
    tags=["dns-providers"],
    route_class=AuditedRoute,
    dependencies=[Depends(Authorize())],
)


@router.get("", summary="List DNS providers")
async def list_dns_providers(ctx: Ctx) -> list[DnsProviderOut]:
    return await dns_providers.list_dns_providers(ctx)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a DNS provider")
async def create_dns_provider(ctx: Ctx, actor: ApiActor, body: DnsProviderCreate) -> DnsProviderOut:
    return await dns_providers.create_dns_provider(ctx, body, actor)


@router.get("/{ref}", summary="Show a DNS provider")
async def get_dns_provider(ctx: Ctx, ref: str) -> DnsProviderOut:
    return await dns_providers.get_dns_provider(ctx, ref)


@router.patch("/{ref}", summary="Change a DNS provider (only the fields sent)")
async def update_dns_provider(ctx: Ctx, actor: ApiActor, ref: str, body: DnsProviderUpdate) -> DnsProviderOut:
    return await dns_providers.update_dns_provider(ctx, ref, body, actor)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a DNS provider")
async def delete_dns_provider(ctx: Ctx, actor: ApiActor, ref: str) -> Response:
    await dns_providers.delete_dns_provider(ctx, ref, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
