"""Secret redaction for everything an upstream client logs or records.

Two complementary rules, because either alone leaks:

* **by name** - values under keys that look like secrets (``password``, ``api_key``, ``X-Auth-Token``,
  ``secretKey`` ...) in JSON bodies, form bodies and query strings become ``***``;
* **by value** - literal secret strings registered with the client (its token, a generated root
  password it just sent) are replaced wherever they appear: URL paths, plain-text bodies, error
  messages. A vendor echoing our token back in an error message is a real thing.

The key rule mirrors :func:`vpsbridge.logs.is_secret_key` but is kept here so that drivers, which may
import only ``core`` and ``http``, get it without pulling in the logging configuration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "secret",
        "token",
        "authorization",
        "key",
        "apikey",
        "credentials",
        "cookie",
        "hash",
        "signature",
        "ticket",
        "csrfpreventiontoken",
    }
)
_NOT_SECRET = frozenset({"token_id", "request_id", "idempotency_key", "dedupe_key", "resource_key", "key_id"})
_WORD_SPLIT = re.compile(r"[^a-zA-Z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
#: Literal secrets shorter than this are ignored: replacing "abc" everywhere would mangle the log
#: while protecting nothing.
MIN_SECRET_LEN = 6


def is_secret_name(name: str) -> bool:
    """True for names such as ``password``, ``api_key``, ``apiKey``, ``X-API-Key``, ``access_token``."""
    lowered = name.lower()
    if lowered in _NOT_SECRET:
        return False
    words = {w.lower() for w in _WORD_SPLIT.split(name) if w}
    return bool(words & _SECRET_WORDS) or lowered.replace("-", "_") in {"api_key", "apikey"}


def secret_parts(value: str) -> list[str]:
    """The literal strings worth registering for a credential header value.

    ``Bearer abc...`` -> the whole value and ``abc...``; ``PVEAPIToken=user@pam!id=uuid`` -> also the
    part after the last ``=``, which is the actual secret.
    """
    parts = [value]
    if " " in value:
        parts.append(value.split(None, 1)[1])
    if "=" in value:
        parts.append(value.rsplit("=", 1)[1])
    return [p for p in parts if len(p) >= MIN_SECRET_LEN]


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every literal secret in ``text`` (longest first, so a prefix cannot survive)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LEN and secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Walk a JSON-like value replacing secret-named entries and literal secrets."""
    secret_list = list(secrets)
    if isinstance(value, str):
        return scrub_text(value, secret_list)
    if isinstance(value, Mapping):
        return {
            k: (
                MASK
                if isinstance(k, str) and is_secret_name(k) and v not in (None, "")
                else redact_value(v, secret_list)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v, secret_list) for v in value]
    return value


def redact_query(query: str, secrets: Iterable[str] = ()) -> str:
    """A query string with secret-named parameters masked (order and blanks kept)."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    masked = [(k, MASK if is_secret_name(k) and v else v) for k, v in pairs]
    return scrub_text(urlencode(masked, safe="*/:@,"), secrets)


def redact_url(url: str, secrets: Iterable[str] = ()) -> str:
    """A URL safe to log: no userinfo password, no secret query values, no literal secrets."""
    secret_list = list(secrets)
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    rebuilt = urlunsplit(
        (parts.scheme, netloc, parts.path, redact_query(parts.query, secret_list), parts.fragment)
    )
    return scrub_text(rebuilt, secret_list)


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes, saying how much was dropped."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    kept = raw[:limit].decode("utf-8", errors="ignore")
    return f"{kept}...[truncated {len(raw) - len(kept.encode('utf-8'))} bytes]"


def redact_body(
    body: bytes | str | None, content_type: str | None, secrets: Iterable[str] = (), limit: int = 4096
) -> str | None:
    """A request or response body as redacted, truncated text (``None`` when there is no body).

    JSON and form bodies are parsed so that secrets are masked by key; anything else (or a body that
    does not parse) is masked by literal value only. Binary bodies are summarised, not dumped.
    """
    if body is None or len(body) == 0:
        return None
    secret_list = list(secrets)
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(body)} bytes of binary data>"
    else:
        text = body
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        text = redact_query(text, secret_list)
    elif ctype.endswith("json") or text.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(text)
        except ValueError:
            text = scrub_text(text, secret_list)
        else:
            text = json.dumps(redact_value(parsed, secret_list), ensure_ascii=False, separators=(",", ":"))
    else:
        text = scrub_text(text, secret_list)
    return truncate(text, limit)
