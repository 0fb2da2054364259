"""``/api/v1/tokens``: operator API tokens (admin scope only).

The plaintext of a new token is in the create response and nowhere else, ever: only its hash is
stored. Revoking keeps the row (with ``revoked_at``) so the audit trail can still name the token.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from vpsbridge.services import tokens
from vpsbridge.services.schemas import Scope, TokenOut
from vpsbridge.web.api.auth import ApiActor, AuditedRoute, Authorize
from vpsbridge.web.deps import Ctx

router = APIRouter(
    prefix="/tokens", tags=["tokens"], route_class=AuditedRoute, dependencies=[Depends(Authorize("admin"))]
)


class TokenCreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    scope: Scope = "read"
    #: Optional expiry (timezone-aware, e.g. ``2030-01-01T00:00:00Z``).
    expires_at: dt.datetime | None = None


class TokenCreated(BaseModel):
    token: TokenOut
    #: The secret to send as ``Authorization: Bearer <plaintext>``; shown this once only.
    plaintext: str


@router.get("", summary="List API tokens (never their secrets)")
async def list_tokens(ctx: Ctx) -> list[TokenOut]:
    return await tokens.list_tokens(ctx)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API token")
async def create_token(ctx: Ctx, actor: ApiActor, body: TokenCreateRequest) -> TokenCreated:
    out, plaintext = await tokens.create_token(ctx, body.name, body.scope, actor, expires_at=body.expires_at)
    return TokenCreated(token=out, plaintext=plaintext)


@router.delete("/{ref}", summary="Revoke an API token (by id or prefix)")
async def revoke_token(ctx: Ctx, actor: ApiActor, ref: str) -> TokenOut:
    return await tokens.revoke_token(ctx, ref, actor)
