"""Browser sessions and one-time sign-in tokens, both stored in the ``sessions`` table.

The portal and the operator console share this: a signed-in browser holds a random cookie; the table
keeps only its SHA-256 (``WebSession.id``), so a leaked database does not let anyone sign in. The same
table holds *one-time sign-in tokens* (single sign-on links from WHMCS, the console or the CLI) under
their own ``kind`` (``<kind>_sso``): consuming one is a single ``DELETE ... WHERE id = :hash AND
expires_at > now`` whose row count decides who won, which is atomic on SQLite and PostgreSQL alike, so
a token can never open two sessions even when two tabs race for it.

The web layer turns cookies into calls here; nothing here knows about HTTP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from vpsbridge.store.models import WebSession, utcnow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

#: How long a session lives without use; activity slides the expiry forward.
DEFAULT_SESSION_TTL = dt.timedelta(hours=8)
#: One-time sign-in tokens are clicked within seconds of being minted.
DEFAULT_TOKEN_TTL = dt.timedelta(minutes=2)
SSO_SUFFIX = "_sso"


def hash_secret(plaintext: str) -> str:
    """The table key for a cookie or token (a fast hash suffices: the input is 256 random bits)."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class SessionView:
    """A live session as the web layer sees it (detached from the database row)."""

    id: str
    kind: str
    subject: str
    csrf_token: str
    expires_at: dt.datetime
    data: dict[str, Any] = field(default_factory=dict)


def _view(row: WebSession) -> SessionView:
    return SessionView(
        id=row.id,
        kind=row.kind,
        subject=row.subject,
        csrf_token=row.csrf_token,
        expires_at=row.expires_at,
        data=dict(row.data or {}),
    )


async def create_session(
    ctx: AppContext,
    kind: str,
    subject: str,
    data: dict[str, Any] | None = None,
    *,
    ttl: dt.timedelta = DEFAULT_SESSION_TTL,
) -> tuple[str, SessionView]:
    """Start a session; returns the cookie value (shown once, never stored) and the session."""
    cookie = secrets.token_urlsafe(32)
    row = WebSession(
        id=hash_secret(cookie),
        kind=kind,
        subject=subject,
        csrf_token=secrets.token_urlsafe(32),
        data=dict(data or {}),
        expires_at=utcnow() + ttl,
    )
    async with ctx.db.session() as s:
        s.add(row)
    return cookie, _view(row)


async def load_session(
    ctx: AppContext, kind: str, cookie: str | None, *, ttl: dt.timedelta = DEFAULT_SESSION_TTL
) -> SessionView | None:
    """The live session behind ``cookie``, or ``None`` (unknown, expired or of another kind).

    The expiry slides forward once at least a tenth of ``ttl`` has passed since the last extension,
    so an active user stays signed in without every page view writing to the database.
    """
    if not cookie or len(cookie) > 200:
        return None
    now = utcnow()
    key = hash_secret(cookie)
    # Every page view reads its session: a read transaction (never queued behind writers); only the
    # rare expiry or extension opens a write.
    async with ctx.db.read() as s:
        row = (await s.execute(select(WebSession).where(WebSession.id == key))).scalar_one_or_none()
        if row is None or row.kind != kind:
            return None
        view = _view(row)
        expired = row.expires_at <= now
        extend = row.expires_at - now < ttl - ttl / 10
    if expired:
        async with ctx.db.session() as s:
            await s.execute(delete(WebSession).where(WebSession.id == key, WebSession.expires_at <= now))
        return None
    if extend:
        async with ctx.db.session() as s:
            await s.execute(update(WebSession).where(WebSession.id == key).values(expires_at=now + ttl))
        view.expires_at = now + ttl
    return view


async def update_session_data(ctx: AppContext, session_id: str, data: dict[str, Any]) -> None:
    """Replace the session's data (the caller read it, changed it and writes it back whole)."""
    async with ctx.db.session() as s:
        await s.execute(
            update(WebSession).where(WebSession.id == session_id).values(data=data, updated_at=utcnow())
        )


async def destroy_session(ctx: AppContext, session_id: str) -> None:
    async with ctx.db.session() as s:
        await s.execute(delete(WebSession).where(WebSession.id == session_id))


async def destroy_subject_sessions(ctx: AppContext, kind: str, subject: str) -> int:
    """Sign a user out everywhere (used when an account is disabled); returns how many ended."""
    async with ctx.db.session() as s:
        result = await s.execute(
            delete(WebSession).where(WebSession.kind == kind, WebSession.subject == subject)
        )
        return int(getattr(result, "rowcount", 0) or 0)


async def purge_expired(ctx: AppContext) -> int:
    """Drop expired sessions and tokens (housekeeping; expired rows are already ignored)."""
    async with ctx.db.session() as s:
        result = await s.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))
        return int(getattr(result, "rowcount", 0) or 0)


# --- one-time sign-in tokens ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OneTimeToken:
    """What a consumed token carried: who it signs in and the data it was minted with."""

    kind: str
    subject: str
    data: dict[str, Any]


async def mint_one_time_token(
    ctx: AppContext,
    kind: str,
    subject: str,
    data: dict[str, Any] | None = None,
    *,
    ttl: dt.timedelta = DEFAULT_TOKEN_TTL,
) -> str:
    """A single-use token for ``kind`` (``portal``, ``admin``); plaintext returned once."""
    token = secrets.token_urlsafe(32)
    async with ctx.db.session() as s:
        s.add(
            WebSession(
                id=hash_secret(token),
                kind=kind + SSO_SUFFIX,
                subject=subject,
                csrf_token="-",  # noqa: S106 - a one-time token row has no CSRF token
                data=dict(data or {}),
                expires_at=utcnow() + ttl,
            )
        )
    return token


async def consume_one_time_token(ctx: AppContext, kind: str, token: str | None) -> OneTimeToken | None:
    """Use up a token: ``None`` when unknown, expired, of another kind or already used.

    Reads the row, then deletes it with the same conditions; only the caller whose delete removed the
    row wins, so concurrent use of one token yields exactly one winner.
    """
    if not token or len(token) > 200:
        return None
    key = hash_secret(token)
    now = utcnow()
    async with ctx.db.session() as s:
        row = (await s.execute(select(WebSession).where(WebSession.id == key))).scalar_one_or_none()
        if row is None or row.kind != kind + SSO_SUFFIX:
            return None
        found = OneTimeToken(kind=kind, subject=row.subject, data=dict(row.data or {}))
        expired = row.expires_at <= now
        result = await s.execute(
            delete(WebSession).where(WebSession.id == key, WebSession.kind == kind + SSO_SUFFIX)
        )
        if int(getattr(result, "rowcount", 0) or 0) != 1 or expired:
            return None
        return found
