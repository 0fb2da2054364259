"""``/api/v1/products``: the single source of product settings (platform, placement, plan, stock, DNS).

``{ref}`` is an id or a name; ``platform`` in a body is a platform id or name.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from vpsbridge.services import products
from vpsbridge.services.schemas import ProductCreate, ProductOut, ProductUpdate
from vpsbridge.web.api.auth import ApiActor, AuditedRoute, Authorize
from vpsbridge.web.deps import Ctx

router = APIRouter(
    prefix="/products", tags=["products"], route_class=AuditedRoute, dependencies=[Depends(Authorize())]
)


@router.get("", summary="List products")
async def list_products(ctx: Ctx) -> list[ProductOut]:
    return await products.list_products(ctx)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a product")
async def create_product(ctx: Ctx, actor: ApiActor, body: ProductCreate) -> ProductOut:
    return await products.create_product(ctx, body, actor)


@router.get("/{ref}", summary="Show a product")
async def get_product(ctx: Ctx, ref: str) -> ProductOut:
    return await products.get_product(ctx, ref)


@router.patch("/{ref}", summary="Change a product (only the fields sent)")
async def update_product(ctx: Ctx, actor: ApiActor, ref: str, body: ProductUpdate) -> ProductOut:
    return await products.update_product(ctx, ref, body, actor)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a product no service uses")
async def delete_product(ctx: Ctx, actor: ApiActor, ref: str) -> Response:
    await products.delete_product(ctx, ref, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
