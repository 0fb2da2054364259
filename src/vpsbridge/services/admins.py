"""Local operator accounts for the operator console.

Passwords are hashed with argon2id. Login takes the same time whether or not the user exists: an
unknown name is verified against a fixed dummy hash, so response times do not reveal which
usernames are valid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select

from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.services.lookup import flush_or_conflict
from vpsbridge.services.schemas import AdminOut
from vpsbridge.store.models import Admin, utcnow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash("vpsbridge-dummy-password-for-timing")


def admin_out(row: Admin) -> AdminOut:
    return AdminOut(
        id=row.id,
        username=row.username,
        is_active=row.is_active,
        has_totp=row.totp_secret_enc is not None,
        last_login_at=row.last_login_at,
        created_at=row.created_at,
    )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"password must be at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if password.strip() != password:
        raise Invalid("password must not start or end with whitespace", field="password")


def _check_username(username: str) -> str:
    name = username.strip()
    if not name or len(name) > 100 or any(c.isspace() for c in name):
        raise Invalid("username must be 1 to 100 characters without spaces", field="username")
    return name


async def create_admin(ctx: AppContext, username: str, password: str, actor: Actor) -> AdminOut:
    name = _check_username(username)
    check_password(password)
    async with ctx.db.session() as session:
        if await session.scalar(select(Admin.id).where(Admin.username == name)) is not None:
            raise Conflict(f"an operator account named {name!r} already exists")
        row = Admin(username=name, password_hash=_hasher.hash(password))
        session.add(row)
        await flush_or_conflict(session, f"an operator account named {name!r} already exists")
        await record(session, actor, "admin.create", "admin", row.id, {"username": name})
        return admin_out(row)


async def set_admin_password(ctx: AppContext, username: str, password: str, actor: Actor) -> AdminOut:
    check_password(password)
    async with ctx.db.session() as session:
        row = await session.scalar(select(Admin).where(Admin.username == username.strip()))
        if row is None:
            raise NotFound(f"no operator account named {username!r}")
        row.password_hash = _hasher.hash(password)
        await session.flush()
        await record(session, actor, "admin.password", "admin", row.id, {"username": row.username})
        return admin_out(row)


async def list_admins(ctx: AppContext) -> list[AdminOut]:
    async with ctx.db.session() as session:
        rows = (await session.execute(select(Admin).order_by(Admin.username))).scalars().all()
        return [admin_out(r) for r in rows]


async def verify_admin_login(ctx: AppContext, username: str, password: str) -> AdminOut | None:
    """The account if ``password`` is right and the account is active, else None (same cost either way)."""
    async with ctx.db.session() as session:
        row = await session.scalar(select(Admin).where(Admin.username == username.strip()))
        stored = row.password_hash if row is not None else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or not row.is_active:
            return None
        if _hasher.check_needs_rehash(stored):
            row.password_hash = _hasher.hash(password)
        row.last_login_at = utcnow()
        return admin_out(row)
