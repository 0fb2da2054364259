"""``/api/v1/platforms``: the hypervisor control planes servers are created on.

``{ref}`` is an id or a name. Credentials are accepted on create and update and never returned;
responses say ``has_credentials`` instead.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from vpsbridge.platforms.models import ConnectionReport
from vpsbridge.services import platforms
from vpsbridge.services.schemas import PlatformCreate, PlatformOut, PlatformUpdate
from vpsbridge.web.api.auth import ApiActor, AuditedRoute, Authorize
from vpsbridge.web.deps import Ctx

router = APIRouter(
    prefix="/platforms", tags=["platforms"], route_class=AuditedRoute, dependencies=[Depends(Authorize())]
)


@router.get("", summary="List platforms")
async def list_platforms(ctx: Ctx) -> list[PlatformOut]:
    return await platforms.list_platforms(ctx)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a platform")
async def create_platform(ctx: Ctx, actor: ApiActor, body: PlatformCreate) -> PlatformOut:
    return await platforms.create_platform(ctx, body, actor)


@router.get("/{ref}", summary="Show a platform")
async def get_platform(ctx: Ctx, ref: str) -> PlatformOut:
    return await platforms.get_platform(ctx, ref)


@router.patch("/{ref}", summary="Change a platform (only the fields sent)")
async def update_platform(ctx: Ctx, actor: ApiActor, ref: str, body: PlatformUpdate) -> PlatformOut:
    return await platforms.update_platform(ctx, ref, body, actor)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an unused platform")
async def delete_platform(ctx: Ctx, actor: ApiActor, ref: str) -> Response:
    await platforms.delete_platform(ctx, ref, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{ref}/test", summary="Test the connection and name each missing permission")
async def test_platform(ctx: Ctx, ref: str) -> ConnectionReport:
    """Each check names what was tested and, when credentials lack a permission, which one.

    An unreachable platform is a 502 ``upstream_error`` envelope saying why.
    """
    return await platforms.test_platform(ctx, ref)
