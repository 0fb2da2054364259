"""``/api/v1/services``: the service lifecycle for operators and scripts (the same functions billing uses).

``{ref}`` is a service id or ``billing:<billing service id>``. Create and the actions answer within
seconds; slow work continues in jobs whose id is in the answer (``GET /api/v1/jobs/{id}``). Reading
a stored login needs the ``write`` scope and resetting one returns it: both hand out a secret.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from vpsbridge.services import provisioning as prov
from vpsbridge.services.provisioning.schemas import PowerActionName
from vpsbridge.web.api.auth import ApiActor, AuditedRoute, Authorize
from vpsbridge.web.deps import Ctx

router = APIRouter(
    prefix="/services", tags=["services"], route_class=AuditedRoute, dependencies=[Depends(Authorize())]
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuspendBody(_Body):
    reason: str | None = None


class TerminateBody(_Body):
    #: Seconds before the server is deleted; default: the product's ``terminate_delay_seconds``.
    delay_seconds: float | None = Field(default=None, ge=0)


class PowerBody(_Body):
    action: PowerActionName


class RenameBody(_Body):
    hostname: str = Field(min_length=1, max_length=253)
    name: str | None = Field(default=None, max_length=100)


class ResolveBody(_Body):
    #: The platform's server id if it was created; ``null`` when it was confirmed not created.
    external_id: str | None


@router.get("", summary="List services (newest first)")
async def list_services(
    ctx: Ctx,
    status_: Annotated[str | None, Query(alias="status")] = None,
    client_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[prov.ServiceOut]:
    return await prov.list_services(ctx, status=status_, client_id=client_id, limit=limit, offset=offset)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a service (idempotent per billing_service_id); the build runs in a job",
)
async def create_service(ctx: Ctx, actor: ApiActor, body: prov.ServiceCreate) -> prov.ServiceOut:
    return await prov.create_service(ctx, body, actor)


@router.get("/{ref}", summary="Show a service and its server")
async def get_service(ctx: Ctx, ref: str) -> prov.ServiceOut:
    return await prov.get_service(ctx, ref)


@router.post("/{ref}/suspend", summary="Suspend")
async def suspend(ctx: Ctx, actor: ApiActor, ref: str, body: SuspendBody | None = None) -> prov.ActionOut:
    return await prov.suspend_service(ctx, ref, actor, reason=body.reason if body else None)


@router.post("/{ref}/unsuspend", summary="Unsuspend")
async def unsuspend(ctx: Ctx, actor: ApiActor, ref: str) -> prov.ActionOut:
    return await prov.unsuspend_service(ctx, ref, actor)


@router.post("/{ref}/terminate", status_code=status.HTTP_202_ACCEPTED, summary="Terminate (after a delay)")
async def terminate(ctx: Ctx, actor: ApiActor, ref: str, body: TerminateBody | None = None) -> prov.ActionOut:
    return await prov.terminate_service(ctx, ref, actor, delay_seconds=body.delay_seconds if body else None)


@router.post(
    "/{ref}/change-package", summary="Change product and/or options; returns the platform's warnings"
)
async def change_package(
    ctx: Ctx, actor: ApiActor, ref: str, body: prov.ChangePackageRequest
) -> prov.ActionOut:
    return await prov.change_package(ctx, ref, body, actor)


@router.post("/{ref}/reset-password", summary="Set a new root password and return it")
async def reset_password(ctx: Ctx, actor: ApiActor, ref: str) -> prov.CredentialsOut:
    return await prov.reset_password(ctx, ref, actor)


@router.get(
    "/{ref}/credentials",
    summary="The stored login of the server (write scope)",
    dependencies=[Depends(Authorize("write"))],
)
async def credentials(ctx: Ctx, ref: str) -> prov.CredentialsOut:
    return await prov.service_credentials(ctx, ref)


@router.post("/{ref}/power", summary="Power action (start, stop, shutdown, restart, reset)")
async def power(ctx: Ctx, actor: ApiActor, ref: str, body: PowerBody) -> prov.ActionOut:
    return await prov.power_service(ctx, ref, body.action, actor)


@router.post("/{ref}/rename", summary="Change the host name (and display name)")
async def rename(ctx: Ctx, actor: ApiActor, ref: str, body: RenameBody) -> prov.ActionOut:
    return await prov.rename_service(ctx, ref, actor, hostname=body.hostname, name=body.name)


@router.post("/{ref}/resolve", summary="Settle a create whose outcome is unknown")
async def resolve(ctx: Ctx, actor: ApiActor, ref: str, body: ResolveBody) -> prov.ServiceOut:
    return await prov.resolve_unknown_create(ctx, ref, actor, external_id=body.external_id)
