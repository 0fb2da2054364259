"""Operator sign-in services: TOTP (RFC 6238 vectors, replay, drift), the two-step login, enrolment,
rate limits, and one-time WHMCS admin SSO tokens - on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64

import pytest
from admin_support import ACTOR, PASSWORD, audit_actions, ctx, make_admin
from sqlalchemy import select

from vpsbridge.services import admin_auth
from vpsbridge.services.admin_auth import (
    TooManyAttempts,
    confirm_totp_enrolment,
    consume_admin_sso,
    disable_totp,
    hotp,
    mint_admin_sso,
    password_step,
    start_totp_enrolment,
    totp_match,
    totp_now,
    totp_step_login,
)
from vpsbridge.services.admins import list_admins
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import Invalid, NotFound
from vpsbridge.store.models import Admin, WebSession

__all__ = ["ctx"]

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode().rstrip("=")


def test_hotp_matches_rfc4226_vectors() -> None:
    expected = [
        "755224",
        "287082",
        "359152",
        "969429",
        "338314",
        "254676",
        "287922",
        "162583",
        "399871",
        "520489",
    ]
    assert [hotp(RFC_SECRET, i) for i in range(10)] == expected


def test_totp_matches_rfc6238_sha1_vectors() -> None:
    # RFC 6238 appendix B (SHA-1), last 6 of the 8 digits.
    for at, code in [(59, "287082"), (1111111109, "081804"), (1111111111, "050471"), (1234567890, "005924")]:
        assert totp_now(RFC_SECRET, at) == code
        assert totp_match(RFC_SECRET, code, at) is not None


def test_totp_allows_one_step_of_drift_only() -> None:
    at = 1_700_000_000.0
    assert totp_match(RFC_SECRET, totp_now(RFC_SECRET, at - 30), at) is not None
    assert totp_match(RFC_SECRET, totp_now(RFC_SECRET, at + 30), at) is not None
    assert totp_match(RFC_SECRET, totp_now(RFC_SECRET, at - 90), at) is None
    assert totp_match(RFC_SECRET, "12345", at) is None
    assert totp_match(RFC_SECRET, "abcdef", at) is None


def _wrong(secret: str) -> str:
    return "000000" if totp_now(secret) != "000000" else "111111"


async def _enable_totp(ctx: AppContext, admin_id: int) -> tuple[str, str]:
    """Enrol ``admin_id``; returns the secret and the code the enrolment used up."""
    admin = next(a for a in await list_admins(ctx) if a.id == admin_id)
    enrolment = start_totp_enrolment(ctx, admin)
    assert enrolment.uri.startswith("otpauth://totp/vpsbridge%3Aalice?secret=")
    with pytest.raises(Invalid):
        await confirm_totp_enrolment(ctx, admin_id, enrolment.ticket, _wrong(enrolment.secret), ACTOR)
    code = totp_now(enrolment.secret)
    out = await confirm_totp_enrolment(ctx, admin_id, enrolment.ticket, code, ACTOR)
    assert out.has_totp
    # A ticket is bound to its account: another operator cannot confirm it.
    with pytest.raises(Invalid):
        await confirm_totp_enrolment(ctx, admin_id + 1, enrolment.ticket, code, ACTOR)
    return enrolment.secret, code


async def test_password_only_login_and_audit(ctx: AppContext) -> None:
    admin_id = await make_admin(ctx)
    outcome = await password_step(ctx, "alice", PASSWORD, ip="203.0.113.5")
    assert outcome.admin is not None
    assert outcome.admin.id == admin_id
    assert not outcome.needs_totp
    wrong = await password_step(ctx, "alice", "not the password", ip="203.0.113.5")
    assert wrong.admin is None
    assert wrong.ticket is None
    assert [r.ip for r in await audit_actions(ctx, "admin.login")] == ["203.0.113.5"]
    assert len(await audit_actions(ctx, "admin.login_failed")) == 1


async def test_totp_login_needs_a_fresh_code_once(ctx: AppContext) -> None:
    admin_id = await make_admin(ctx)
    secret, used = await _enable_totp(ctx, admin_id)
    async with ctx.db.session() as session:
        stored = await session.scalar(select(Admin.totp_secret_enc).where(Admin.id == admin_id))
    assert stored is not None
    assert secret not in stored

    outcome = await password_step(ctx, "alice", PASSWORD)
    assert outcome.admin is None
    assert outcome.ticket is not None
    # The code the enrolment used cannot be replayed for the login...
    assert await totp_step_login(ctx, outcome.ticket, used) is None
    # ...but the next step's code (within the allowed drift) works, once.
    upcoming = hotp(secret, admin_auth.totp_step() + 1)
    admin = await totp_step_login(ctx, outcome.ticket, upcoming)
    assert admin is not None
    assert admin.id == admin_id
    assert await totp_step_login(ctx, outcome.ticket, upcoming) is None
    # A forged or altered ticket gets nowhere.
    assert await totp_step_login(ctx, outcome.ticket[:-4] + "AAAA", upcoming) is None
    methods = [r.details.get("method") for r in await audit_actions(ctx, "admin.login")]
    assert methods == ["password+totp"]


async def test_ticket_expires(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    admin_id = await make_admin(ctx)
    secret, _ = await _enable_totp(ctx, admin_id)
    outcome = await password_step(ctx, "alice", PASSWORD)
    assert outcome.ticket is not None
    real = admin_auth.time.time
    monkeypatch.setattr(admin_auth.time, "time", lambda: real() + admin_auth.TICKET_TTL_SECONDS + 5)
    assert await totp_step_login(ctx, outcome.ticket, totp_now(secret)) is None


async def test_disable_totp_checks_the_code(ctx: AppContext) -> None:
    admin_id = await make_admin(ctx)
    secret, _ = await _enable_totp(ctx, admin_id)
    with pytest.raises(Invalid):
        await disable_totp(ctx, admin_id, ACTOR, code=_wrong(secret))
    out = await disable_totp(ctx, admin_id, ACTOR, code=totp_now(secret))
    assert not out.has_totp
    assert len(await audit_actions(ctx, "admin.totp_disable")) == 1


async def test_login_attempts_are_rate_limited(ctx: AppContext) -> None:
    await make_admin(ctx)
    for _ in range(admin_auth.LOGIN_LIMIT):
        assert (await password_step(ctx, "alice", "wrong password!!", ip="203.0.113.9")).admin is None
    with pytest.raises(TooManyAttempts) as caught:
        await password_step(ctx, "alice", PASSWORD, ip="203.0.113.9")
    assert caught.value.http_status == 429
    assert caught.value.retry_after > 0


async def test_sso_token_is_single_use(ctx: AppContext) -> None:
    admin_id = await make_admin(ctx)
    minted = await mint_admin_sso(ctx, "alice", Actor("bridge", "whmcs"))
    assert minted.path.startswith("/admin/sso?token=")
    assert minted.admin_id == admin_id
    async with ctx.db.session() as session:
        stored = (await session.scalars(select(WebSession.id))).all()
    assert minted.token not in stored  # only a hash is kept
    results = await asyncio.gather(
        *(consume_admin_sso(ctx, minted.token, ip="203.0.113.1") for _ in range(5))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].id == admin_id
    assert await consume_admin_sso(ctx, minted.token) is None
    assert [r.details for r in await audit_actions(ctx, "admin.login")] == [{"method": "sso"}]
    assert len(await audit_actions(ctx, "admin.sso_mint")) == 1


async def test_sso_token_expires_and_unknown_users_are_refused(ctx: AppContext) -> None:
    await make_admin(ctx)
    with pytest.raises(NotFound):
        await mint_admin_sso(ctx, "mallory", Actor("bridge", "whmcs"))
    minted = await mint_admin_sso(ctx, "alice", Actor("bridge", "whmcs"), ttl_seconds=-1)
    assert await consume_admin_sso(ctx, minted.token) is None
    assert await consume_admin_sso(ctx, "") is None
    assert await consume_admin_sso(ctx, "x" * 500) is None
    async with ctx.db.session() as session:
        row = await session.scalar(select(Admin).where(Admin.username == "alice"))
        assert row is not None
        row.is_active = False
    with pytest.raises(NotFound):
        await mint_admin_sso(ctx, "alice", Actor("bridge", "whmcs"))
