"""``/api/v1/ip-pools``: address pools servers get their IPs from (with usage counts)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from vpsbridge.services import pools
from vpsbridge.services.schemas import IpPoolCreate, IpPoolOut, IpPoolUpdate
from vpsbridge.web.api.auth import ApiActor, AuditedRoute, Authorize
from vpsbridge.web.deps import Ctx

router = APIRouter(
    prefix="/ip-pools", tags=["ip-pools"], route_class=AuditedRoute, dependencies=[Depends(Authorize())]
)


@router.get("", summary="List IP pools")
async def list_pools(ctx: Ctx) -> list[IpPoolOut]:
    return await pools.list_pools(ctx)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add an IP pool")
async def create_pool(ctx: Ctx, actor: ApiActor, body: IpPoolCreate) -> IpPoolOut:
    return await pools.create_pool(ctx, body, actor)


@router.get("/{ref}", summary="Show an IP pool")
async def get_pool(ctx: Ctx, ref: str) -> IpPoolOut:
    return await pools.get_pool(ctx, ref)


@router.patch("/{ref}", summary="Change an IP pool (only the fields sent)")
async def update_pool(ctx: Ctx, actor: ApiActor, ref: str, body: IpPoolUpdate) -> IpPoolOut:
    return await pools.update_pool(ctx, ref, body, actor)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an IP pool")
async def delete_pool(ctx: Ctx, actor: ApiActor, ref: str) -> Response:
    await pools.delete_pool(ctx, ref, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
