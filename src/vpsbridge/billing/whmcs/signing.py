"""Authenticating the PHP bridge: HMAC over timestamp, nonce, method, path and body.

The PHP module and vpsbridge share one secret (the WHMCS server record's access hash on one side,
``bridge_secret`` on the other). Every request carries three headers:

* ``X-Bridge-Timestamp`` - Unix seconds; a request more than :data:`WINDOW_SECONDS` away from our
  clock is refused, so a captured request stops working after five minutes;
* ``X-Bridge-Nonce`` - 16-64 characters of ``[A-Za-z0-9_-]``, unique per request; the nonce is
  remembered in the shared cache for twice the window, so the same request cannot be replayed even
  inside the window;
* ``X-Bridge-Signature`` - lower-case hex HMAC-SHA256 of :func:`canonical_message`.

Method and path are part of the signed message so a signed "Suspend" body cannot be replayed against
the "Terminate" endpoint. The comparison is constant-time. The nonce is recorded only *after* the
signature verified, so an attacker cannot burn nonces with unsigned requests.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from vpsbridge.cache import Cache

WINDOW_SECONDS = 300
HEADER_TIMESTAMP = "x-bridge-timestamp"
HEADER_NONCE = "x-bridge-nonce"
HEADER_SIGNATURE = "x-bridge-signature"
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
NONCE_KEY = "bridge:nonce:"


class SignatureError(Exception):
    """The request is not from our bridge (or is stale or replayed); ``str()`` says which, for the log
    and for the PHP side, which shows it to the WHMCS admin testing the connection."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def canonical_message(timestamp: str, nonce: str, method: str, path: str, body: bytes) -> bytes:
    """The exact bytes both sides sign; lines joined with ``\\n``, body last and unmodified."""
    head = f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n".encode()
    return head + body


def sign(secret: str, timestamp: str, nonce: str, method: str, path: str, body: bytes) -> str:
    """The hex signature (used by tests and by any Python caller of the bridge API)."""
    message = canonical_message(timestamp, nonce, method, path, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, method: str, path: str, body: bytes, *, nonce: str, timestamp: int | None = None
) -> dict[str, str]:
    """Headers for a signed request, as the PHP bridge builds them."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-Bridge-Timestamp": ts,
        "X-Bridge-Nonce": nonce,
        "X-Bridge-Signature": sign(secret, ts, nonce, method, path, body),
    }


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified request told us about itself."""

    timestamp: int
    nonce: str


async def verify_request(
    *,
    secret: str | None,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    cache: Cache,
    clock: Callable[[], float] = time.time,
    window: int = WINDOW_SECONDS,
) -> Verified:
    """Accept the request or raise :class:`SignatureError`.

    ``headers`` must be case-insensitive or lower-case keyed (Starlette's are).
    """
    if not secret:
        raise SignatureError(
            "the bridge secret is not configured on the vpsbridge side (set VPSBRIDGE_BRIDGE_SECRET)",
            code="not_configured",
        )
    raw_ts = headers.get(HEADER_TIMESTAMP, "")
    nonce = headers.get(HEADER_NONCE, "")
    signature = headers.get(HEADER_SIGNATURE, "")
    if not raw_ts or not nonce or not signature:
        raise SignatureError("the request is not signed (bridge headers missing)", code="unsigned")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise SignatureError("the request timestamp is not a number", code="bad_timestamp") from None
    if not NONCE_RE.match(nonce):
        raise SignatureError("the request nonce is malformed", code="bad_nonce")
    expected = sign(secret, raw_ts, nonce, method, path, body)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise SignatureError(
            "bad signature: the shared secret in WHMCS (server access hash) does not match vpsbridge",
            code="bad_signature",
        )
    skew = clock() - timestamp
    if abs(skew) > window:
        raise SignatureError(
            f"the request timestamp is {int(abs(skew))} s {'old' if skew > 0 else 'in the future'} "
            f"(allowed: {window} s); check the clocks of WHMCS and vpsbridge",
            code="expired",
        )
    if not await cache.debounce(NONCE_KEY + nonce, 2 * window):
        raise SignatureError("replayed request: this nonce was already used", code="replayed")
    return Verified(timestamp=timestamp, nonce=nonce)
