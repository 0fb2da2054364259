"""API tokens and operator accounts."""

from __future__ import annotations

import datetime as dt

import pytest
from catalog_support import ACTOR, audit_rows, ctx, raw_value

from vpsbridge.services import admins, tokens
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.services.schemas import TokenPrincipal
from vpsbridge.store.models import utcnow

__all__ = ["ctx"]


async def test_token_lifecycle(ctx: AppContext) -> None:
    out, plaintext = await tokens.create_token(ctx, "ci deploy", "write", ACTOR)
    assert plaintext.startswith(f"vpsb_{out.prefix}_")
    assert out.active
    assert out.created_by == "admin:alice"
    stored = await raw_value(ctx, "api_tokens", "token_hash", out.id)
    assert stored == tokens.hash_token(plaintext)
    assert plaintext not in stored

    principal = await tokens.authenticate_token(ctx, plaintext)
    assert principal == TokenPrincipal(token_id=out.id, name="ci deploy", prefix=out.prefix, scope="write")
    listed = await tokens.list_tokens(ctx)
    assert listed[0].last_used_at is not None

    assert await tokens.authenticate_token(ctx, plaintext + "x") is None
    assert await tokens.authenticate_token(ctx, "vpsb_nothing_here") is None
    assert await tokens.authenticate_token(ctx, "garbage") is None
    # A right secret under someone else's prefix is refused too.
    other, _ = await tokens.create_token(ctx, "other", "read", ACTOR)
    forged = plaintext.replace(out.prefix, other.prefix, 1)
    assert await tokens.authenticate_token(ctx, forged) is None

    revoked = await tokens.revoke_token(ctx, out.prefix, ACTOR)
    assert revoked.revoked_at is not None
    assert not revoked.active
    assert await tokens.authenticate_token(ctx, plaintext) is None
    again = await tokens.revoke_token(ctx, str(out.id), ACTOR)
    assert again.revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        await tokens.revoke_token(ctx, "ffffffffff", ACTOR)

    actions = [r.action for r in await audit_rows(ctx)]
    assert actions == ["token.create", "token.create", "token.revoke"]
    for row in await audit_rows(ctx):
        assert plaintext not in str(row.details)


async def test_expired_token_is_refused(ctx: AppContext) -> None:
    past = utcnow() - dt.timedelta(seconds=1)
    out, plaintext = await tokens.create_token(ctx, "old", "admin", ACTOR, expires_at=past)
    assert not out.active
    assert await tokens.authenticate_token(ctx, plaintext) is None
    _, fresh = await tokens.create_token(
        ctx, "new", "admin", ACTOR, expires_at=utcnow() + dt.timedelta(hours=1)
    )
    assert await tokens.authenticate_token(ctx, fresh) is not None
    with pytest.raises(Invalid) as bad_scope:
        await tokens.create_token(ctx, "x", "root", ACTOR)  # type: ignore[arg-type]
    assert bad_scope.value.field == "scope"


def test_scopes_are_ordered() -> None:
    def principal(scope: str) -> TokenPrincipal:
        return TokenPrincipal(token_id=1, name="t", prefix="p", scope=scope)  # type: ignore[arg-type]

    assert principal("read").allows("read")
    assert not principal("read").allows("write")
    assert not principal("read").allows("admin")
    assert principal("write").allows("read")
    assert principal("write").allows("write")
    assert not principal("write").allows("admin")
    assert all(principal("admin").allows(s) for s in ("read", "write", "admin"))


async def test_admin_accounts(ctx: AppContext) -> None:
    created = await admins.create_admin(ctx, "alice", "correct horse battery", ACTOR)
    assert created.username == "alice"
    stored = await raw_value(ctx, "admins", "password_hash", created.id)
    assert stored.startswith("$argon2id$")

    ok = await admins.verify_admin_login(ctx, "alice", "correct horse battery")
    assert ok is not None
    assert ok.last_login_at is not None
    assert await admins.verify_admin_login(ctx, "alice", "wrong horse battery") is None
    assert await admins.verify_admin_login(ctx, "mallory", "correct horse battery") is None

    with pytest.raises(Invalid) as short:
        await admins.create_admin(ctx, "bob", "short", ACTOR)
    assert short.value.field == "password"
    with pytest.raises(Conflict):
        await admins.create_admin(ctx, "alice", "another long password", ACTOR)

    await admins.set_admin_password(ctx, "alice", "a brand new passphrase", ACTOR)
    assert await admins.verify_admin_login(ctx, "alice", "correct horse battery") is None
    assert await admins.verify_admin_login(ctx, "alice", "a brand new passphrase") is not None
    assert [r.action for r in await audit_rows(ctx)] == ["admin.create", "admin.password"]
