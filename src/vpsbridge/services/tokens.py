"""Operator API tokens.

A token reads ``vpsb_<prefix>_<secret>``. Only its SHA-256 hash is stored; the prefix is stored in
clear so operators can tell tokens apart in lists and revoke one by it. Authentication looks the
token up *by hash*: the database compares digests of a 256-bit random secret, so no timing of a
string comparison on the secret can leak anything, and a stolen database does not reveal tokens
(a fast hash is enough because the secret is random, not a password).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Invalid, NotFound
from vpsbridge.services.schemas import SCOPES, Scope, TokenOut, TokenPrincipal
from vpsbridge.store.models import ApiToken, utcnow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

TOKEN_MARK = "vpsb"  # noqa: S105 - a fixed marker, not a secret
_PREFIX_BYTES = 5  # 10 hex characters


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _is_active(row: ApiToken, now: dt.datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


def token_out(row: ApiToken, now: dt.datetime | None = None) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scope=row.scope,
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
        active=_is_active(row, now or utcnow()),
    )


async def create_token(
    ctx: AppContext, name: str, scope: Scope, actor: Actor, *, expires_at: dt.datetime | None = None
) -> tuple[TokenOut, str]:
    """Make a token; the plaintext is returned here once and can never be recovered later."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("name must be 1 to 100 characters", field="name")
    if scope not in SCOPES:
        raise Invalid(f"scope must be one of {', '.join(SCOPES)}", field="scope")
    if expires_at is not None and expires_at.tzinfo is None:
        raise Invalid("expires_at must carry a timezone", field="expires_at")
    async with ctx.db.session() as session:
        while True:
            prefix = secrets.token_hex(_PREFIX_BYTES)
            taken = await session.scalar(select(ApiToken.id).where(ApiToken.prefix == prefix))
            if taken is None:
                break
        plaintext = f"{TOKEN_MARK}_{prefix}_{secrets.token_urlsafe(32)}"
        row = ApiToken(
            name=name,
            prefix=prefix,
            token_hash=hash_token(plaintext),
            scope=scope,
            created_by=f"{actor.type}:{actor.id}" if actor.id else actor.type,
            expires_at=expires_at,
        )
        session.add(row)
        await session.flush()
        await record(
            session, actor, "token.create", "api_token", row.id,
            {"name": name, "scope": scope, "prefix": prefix,
             "expires_at": expires_at.isoformat() if expires_at else None},
        )  # fmt: skip
        return token_out(row), plaintext


async def list_tokens(ctx: AppContext) -> list[TokenOut]:
    async with ctx.db.session() as session:
        rows = (await session.execute(select(ApiToken).order_by(ApiToken.id))).scalars().all()
        now = utcnow()
        return [token_out(r, now) for r in rows]


async def revoke_token(ctx: AppContext, ref: int | str, actor: Actor) -> TokenOut:
    """Revoke by id or prefix; revoking an already revoked token is a no-op that keeps the first time."""
    text = str(ref).strip()
    if text.startswith(TOKEN_MARK + "_"):
        text = text.split("_")[1]  # a whole token (or its shown prefix) was pasted
    async with ctx.db.session() as session:
        conditions = [ApiToken.prefix == text]
        if text.isdigit():
            conditions.append(ApiToken.id == int(text))
        rows = (await session.execute(select(ApiToken).where(or_(*conditions)))).scalars().all()
        row = next((r for r in rows if r.prefix == text), rows[0] if rows else None)
        if row is None:
            raise NotFound(f"no API token with id or prefix {text!r}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            await session.flush()
            await record(session, actor, "token.revoke", "api_token", row.id, {"prefix": row.prefix})
        return token_out(row)


async def authenticate_token(ctx: AppContext, plaintext: str) -> TokenPrincipal | None:
    """The principal of a valid token, or None for anything unknown, malformed, revoked or expired."""
    parts = plaintext.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_MARK or not parts[1] or not parts[2]:
        return None
    digest = hash_token(plaintext.strip())
    async with ctx.db.session() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        now = utcnow()
        if row is None or row.prefix != parts[1] or not _is_active(row, now):
            return None
        row.last_used_at = now
        return TokenPrincipal(token_id=row.id, name=row.name, prefix=row.prefix, scope=row.scope)
