"""Bridge request signing: what is accepted, and every way a request is refused."""

from __future__ import annotations

import uuid

import pytest

from vpsbridge.billing.whmcs.signing import SignatureError, sign, signed_headers, verify_request
from vpsbridge.cache import MemoryCache

SECRET = "s3cret-shared-between-whmcs-and-vpsbridge"
PATH = "/bridge/v1/module/CreateAccount"
BODY = b'{"params": {"serviceid": 7}}'
NOW = 1_800_000_000


def headers(**overrides: str) -> dict[str, str]:
    h = {
        k.lower(): v
        for k, v in signed_headers(SECRET, "POST", PATH, BODY, nonce=uuid.uuid4().hex, timestamp=NOW).items()
    }
    h.update(overrides)
    return h


async def verify(
    h: dict[str, str],
    *,
    cache: MemoryCache | None = None,
    body: bytes = BODY,
    path: str = PATH,
    secret: str | None = SECRET,
    now: float = NOW,
) -> None:
    await verify_request(
        secret=secret,
        headers=h,
        method="POST",
        path=path,
        body=body,
        cache=cache if cache is not None else MemoryCache(),
        clock=lambda: now,
    )


async def test_a_correctly_signed_request_is_accepted() -> None:
    await verify(headers())


def test_signature_matches_the_php_formula() -> None:
    import hashlib
    import hmac

    message = f"{NOW}\nabc\nPOST\n{PATH}\n".encode() + BODY
    assert (
        sign(SECRET, str(NOW), "abc", "post", PATH, BODY)
        == hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"body": b'{"params": {"serviceid": 8}}'}, "bad_signature"),
        ({"path": "/bridge/v1/module/TerminateAccount"}, "bad_signature"),
        ({"secret": "another-secret"}, "bad_signature"),
        ({"now": NOW + 301}, "expired"),
        ({"now": NOW - 301}, "expired"),
        ({"secret": None}, "not_configured"),
    ],
)
async def test_tampered_stale_or_unconfigured_requests_are_refused(
    change: dict[str, object], code: str
) -> None:
    with pytest.raises(SignatureError) as info:
        await verify(headers(), **change)  # type: ignore[arg-type]
    assert info.value.code == code


async def test_within_the_window_is_accepted() -> None:
    await verify(headers(), now=NOW + 299)


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"x-bridge-signature": ""}, "unsigned"),
        ({"x-bridge-timestamp": "yesterday"}, "bad_timestamp"),
        ({"x-bridge-nonce": "short"}, "bad_nonce"),
    ],
)
async def test_malformed_headers_are_refused(override: dict[str, str], code: str) -> None:
    with pytest.raises(SignatureError) as info:
        await verify(headers(**override))
    assert info.value.code == code


async def test_a_replayed_nonce_is_refused_but_a_bad_signature_does_not_burn_it() -> None:
    cache = MemoryCache()
    h = headers()
    with pytest.raises(SignatureError):
        await verify({**h, "x-bridge-signature": "0" * 64}, cache=cache)
    await verify(h, cache=cache)
    with pytest.raises(SignatureError) as info:
        await verify(h, cache=cache)
    assert info.value.code == "replayed"
