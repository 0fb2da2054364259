"""Signing operators in to the console: password + optional TOTP, and single sign-on from WHMCS.

Three ways in, each ending in an :class:`~vpsbridge.services.schemas.AdminOut` that the web layer
turns into a session:

* **Password** (:func:`password_step`): argon2id through :func:`~vpsbridge.services.admins.
  verify_admin_login`, rate limited per username and per address so guessing is slow even from many
  machines. An account with TOTP does not get in yet: it gets a *ticket* - an encrypted, short-lived
  statement "admin N passed the password at T" - that the second step must present.
* **TOTP** (:func:`totp_step`): RFC 6238 (HMAC-SHA1, 30 s, 6 digits, one step of clock drift either
  way), the form every authenticator app uses. A code is accepted once: the (account, time step) pair
  is remembered atomically in the cache, so a code read over a shoulder cannot be replayed.
* **Single sign-on** (:func:`mint_admin_sso` / :func:`consume_admin_sso`): WHMCS's admin area asks the
  bridge for a one-time token for the WHMCS admin's username; the browser brings it to
  ``/admin/sso``. The token is a one-time token of :mod:`vpsbridge.services.web_sessions` (only its
  SHA-256 is stored, kind ``admin_sso``), it lives 60 seconds, and consuming it is one atomic delete -
  two browsers racing with the same token cannot both win. WHMCS has already authenticated (and, if
  configured, second-factored) its admin, so SSO does not ask for a TOTP code again.

Tickets and pending TOTP secrets travel through the browser encrypted with the context's secret box
(authenticated encryption), so they need no server-side state and cannot be forged or altered.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import struct
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from vpsbridge.services import web_sessions
from vpsbridge.services.admins import admin_out, verify_admin_login
from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Invalid, NotFound, ServiceError
from vpsbridge.services.schemas import AdminOut
from vpsbridge.store.models import Admin, utcnow
from vpsbridge.store.secrets import SecretDecryptError

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

#: TOTP parameters every authenticator app understands (RFC 6238 defaults).
TOTP_DIGITS = 6
TOTP_PERIOD = 30
TOTP_DRIFT_STEPS = 1
TOTP_ISSUER = "vpsbridge"

#: How long the step between password and TOTP code may take.
TICKET_TTL_SECONDS = 300
#: How long a pending enrolment (secret shown, not yet confirmed) stays valid.
ENROL_TTL_SECONDS = 900
#: How long an SSO token minted for the WHMCS admin area stays valid.
SSO_TTL_SECONDS = 60
#: The area whose one-time tokens these are (stored as ``admin_sso`` rows by ``web_sessions``).
SSO_KIND = "admin"

#: Failed sign-in attempts allowed per window, per username and per client address.
LOGIN_LIMIT = 10
LOGIN_WINDOW_SECONDS = 300


class TooManyAttempts(ServiceError):
    """Sign-in attempts over the limit; ``retry_after`` says when the window ends."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, details={"retry_after": round(retry_after)})
        self.retry_after = retry_after


# --- TOTP (RFC 6238 / RFC 4226) ---------------------------------------------------------------------


def new_totp_secret() -> str:
    """A fresh 160-bit secret in base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")


def _secret_bytes(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(secret: str, counter: int, digits: int = TOTP_DIGITS) -> str:
    """RFC 4226 HOTP value of ``counter`` (dynamic truncation of HMAC-SHA1)."""
    digest = hmac.new(_secret_bytes(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % (10**digits)
    return str(code).zfill(digits)


def totp_step(at: float | None = None) -> int:
    """The RFC 6238 time step containing ``at`` (now by default)."""
    return int((time.time() if at is None else at) // TOTP_PERIOD)


def totp_now(secret: str, at: float | None = None) -> str:
    """The code an authenticator app shows at ``at``; used by tests and the enrolment check."""
    return hotp(secret, totp_step(at))


def totp_match(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step ``code`` belongs to (within the allowed drift), or None."""
    cleaned = code.replace(" ", "").strip()
    if len(cleaned) != TOTP_DIGITS or not cleaned.isdigit():
        return None
    now = totp_step(at)
    for step in range(now - TOTP_DRIFT_STEPS, now + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(hotp(secret, step), cleaned):
            return step
    return None


def provisioning_uri(secret: str, username: str, issuer: str = TOTP_ISSUER) -> str:
    """The ``otpauth://`` URI authenticator apps import (as text or QR code)."""
    label = urllib.parse.quote(f"{issuer}:{username}")
    query = urllib.parse.urlencode(
        {"secret": secret, "issuer": issuer, "digits": TOTP_DIGITS, "period": TOTP_PERIOD}
    )
    return f"otpauth://totp/{label}?{query}"


async def _code_unused(ctx: AppContext, admin_id: int, step: int) -> bool:
    """Atomically claim (admin, step): True the first time only, so a code works once."""
    window = TOTP_PERIOD * (2 * TOTP_DRIFT_STEPS + 2)
    return await ctx.cache.debounce(f"admin:totp-used:{admin_id}:{step}", window)


# --- sealed tickets ---------------------------------------------------------------------------------


def _seal(ctx: AppContext, purpose: str, payload: dict[str, Any]) -> str:
    return ctx.secrets.encrypt_json({"purpose": purpose, "iat": time.time(), **payload})


def _open(ctx: AppContext, purpose: str, ticket: str, ttl: float) -> dict[str, Any] | None:
    try:
        data = ctx.secrets.decrypt_json(ticket)
    except (SecretDecryptError, ValueError, UnicodeError):
        return None
    issued = data.get("iat")
    if data.get("purpose") != purpose or not isinstance(issued, int | float):
        return None
    if not 0 <= time.time() - issued <= ttl:
        return None
    return data


# --- password step ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordOutcome:
    """Result of the password step: signed in (``admin``), or a TOTP code is needed (``ticket``)."""

    admin: AdminOut | None = None
    ticket: str | None = None

    @property
    def needs_totp(self) -> bool:
        return self.ticket is not None


async def _limit(ctx: AppContext, keys: list[str]) -> None:
    for key in keys:
        decision = await ctx.cache.hit(key, LOGIN_LIMIT, LOGIN_WINDOW_SECONDS)
        if not decision.allowed:
            raise TooManyAttempts(
                "Too many sign-in attempts; wait a few minutes and try again.",
                retry_after=decision.retry_after,
            )


def _login_keys(username: str, ip: str | None) -> list[str]:
    keys = [f"admin:login:user:{username.strip().lower()[:100]}"]
    if ip:
        keys.append(f"admin:login:ip:{ip}")
    return keys


async def _audit(
    ctx: AppContext, actor: Actor, action: str, admin_id: int | None, details: dict[str, Any]
) -> None:
    async with ctx.db.session() as session:
        await record(session, actor, action, "admin", admin_id, details)


async def password_step(
    ctx: AppContext, username: str, password: str, *, ip: str | None = None
) -> PasswordOutcome:
    """Check a username and password; None-like outcome (neither field set) when they are wrong.

    Every attempt counts against the per-username and per-address limits before the (deliberately
    slow) hash check, so the limit also bounds the CPU an attacker can make us spend.
    """
    await _limit(ctx, _login_keys(username, ip))
    admin = await verify_admin_login(ctx, username, password)
    if admin is None:
        await _audit(ctx, Actor("admin", None, ip), "admin.login_failed", None, {"username": username[:100]})
        return PasswordOutcome()
    if admin.has_totp:
        return PasswordOutcome(ticket=_seal(ctx, "totp", {"admin_id": admin.id}))
    await _audit(ctx, Actor("admin", str(admin.id), ip), "admin.login", admin.id, {"method": "password"})
    return PasswordOutcome(admin=admin)


async def _totp_secret(ctx: AppContext, admin_id: int) -> tuple[Admin, str] | None:
    async with ctx.db.session() as session:
        row = await session.get(Admin, admin_id)
        if row is None or not row.is_active or row.totp_secret_enc is None:
            return None
        return row, ctx.secrets.decrypt(row.totp_secret_enc)


async def totp_step_login(
    ctx: AppContext, ticket: str, code: str, *, ip: str | None = None
) -> AdminOut | None:
    """Second step: the account named by a valid ticket, if ``code`` is its current, unused TOTP code."""
    data = _open(ctx, "totp", ticket, TICKET_TTL_SECONDS)
    if data is None or not isinstance(data.get("admin_id"), int):
        return None
    admin_id = int(data["admin_id"])
    await _limit(ctx, [f"admin:login:totp:{admin_id}"] + ([f"admin:login:ip:{ip}"] if ip else []))
    found = await _totp_secret(ctx, admin_id)
    if found is None:
        return None
    row, secret = found
    step = totp_match(secret, code)
    if step is None or not await _code_unused(ctx, admin_id, step):
        await _audit(ctx, Actor("admin", None, ip), "admin.login_failed", admin_id, {"reason": "totp"})
        return None
    await _audit(ctx, Actor("admin", str(admin_id), ip), "admin.login", admin_id, {"method": "password+totp"})
    return admin_out(row)


# --- TOTP enrolment ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpEnrolment:
    """A secret to show once (text + ``otpauth://`` URI) and the sealed copy the confirm form returns."""

    secret: str
    uri: str
    ticket: str


def start_totp_enrolment(ctx: AppContext, admin: AdminOut) -> TotpEnrolment:
    """A new secret for ``admin``; nothing is stored until a code from it is confirmed."""
    secret = new_totp_secret()
    ticket = _seal(ctx, "enrol", {"admin_id": admin.id, "secret": secret})
    return TotpEnrolment(secret=secret, uri=provisioning_uri(secret, admin.username), ticket=ticket)


async def confirm_totp_enrolment(
    ctx: AppContext, admin_id: int, ticket: str, code: str, actor: Actor
) -> AdminOut:
    """Store the enrolment's secret once the operator proves their app produces its codes."""
    data = _open(ctx, "enrol", ticket, ENROL_TTL_SECONDS)
    if data is None or data.get("admin_id") != admin_id or not isinstance(data.get("secret"), str):
        raise Invalid("this set-up form has expired; start two-factor set-up again", field="code")
    secret = str(data["secret"])
    step = totp_match(secret, code)
    if step is None or not await _code_unused(ctx, admin_id, step):
        raise Invalid("that code does not match; check the time on your device and try again", field="code")
    async with ctx.db.session() as session:
        row = await session.get(Admin, admin_id)
        if row is None:
            raise NotFound(f"operator account {admin_id} does not exist")
        row.totp_secret_enc = ctx.secrets.encrypt(secret)
        await session.flush()
        await record(session, actor, "admin.totp_enable", "admin", admin_id, {"username": row.username})
        return admin_out(row)


async def disable_totp(ctx: AppContext, admin_id: int, actor: Actor, *, code: str | None = None) -> AdminOut:
    """Remove an account's TOTP secret; with ``code``, only if it is a valid current code."""
    async with ctx.db.session() as session:
        row = await session.get(Admin, admin_id)
        if row is None:
            raise NotFound(f"operator account {admin_id} does not exist")
        current = row.totp_secret_enc
        if (
            current is not None
            and code is not None
            and totp_match(ctx.secrets.decrypt(current), code) is None
        ):
            raise Invalid("that code does not match", field="code")
        row.totp_secret_enc = None
        await session.flush()
        await record(session, actor, "admin.totp_disable", "admin", admin_id, {"username": row.username})
        return admin_out(row)


# --- single sign-on from the WHMCS admin area -------------------------------------------------------


@dataclass(frozen=True)
class AdminSsoToken:
    """A one-time sign-in link for an operator; ``path`` is relative to the public URL."""

    token: str
    path: str
    expires_at: dt.datetime
    admin_id: int


async def mint_admin_sso(
    ctx: AppContext, username: str, actor: Actor, *, ttl_seconds: float = SSO_TTL_SECONDS
) -> AdminSsoToken:
    """A single-use sign-in token for the active operator account named ``username``.

    WHMCS admins map to operator accounts by username (create them with
    ``vpsbridge admin create-user``): an unknown or disabled name is refused rather than created,
    so WHMCS access never silently becomes console access.
    """
    name = username.strip()
    ttl = dt.timedelta(seconds=ttl_seconds)
    async with ctx.db.session() as session:
        row = await session.scalar(select(Admin).where(Admin.username == name))
        if row is None or not row.is_active:
            raise NotFound(
                f"no active operator account named {name!r}; create it with `vpsbridge admin create-user`"
            )
        admin_id = row.id
        await record(session, actor, "admin.sso_mint", "admin", admin_id, {"username": row.username})
    token = await web_sessions.mint_one_time_token(ctx, SSO_KIND, str(admin_id), ttl=ttl)
    return AdminSsoToken(
        token=token,
        path=f"/admin/sso?token={urllib.parse.quote(token)}",
        expires_at=utcnow() + ttl,
        admin_id=admin_id,
    )


async def consume_admin_sso(ctx: AppContext, token: str, *, ip: str | None = None) -> AdminOut | None:
    """The operator a valid, unexpired, unused token was minted for; the token is gone afterwards."""
    used = await web_sessions.consume_one_time_token(ctx, SSO_KIND, token)
    if used is None or not used.subject.isdigit():
        return None
    async with ctx.db.session() as session:
        row = await session.get(Admin, int(used.subject))
        if row is None or not row.is_active:
            return None
        row.last_login_at = utcnow()
        await session.flush()
        await record(
            session, Actor("admin", str(row.id), ip), "admin.login", "admin", row.id, {"method": "sso"}
        )
        return admin_out(row)
