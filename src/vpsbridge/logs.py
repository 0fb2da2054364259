"""Structured logging shared by every vpsbridge process (web, worker, cron, CLI).

One call to :func:`configure_logging` at process start sends both structlog and the standard library's
``logging`` (uvicorn, SQLAlchemy, httpx2, alembic ...) through the same processor chain, so an
operator's log shipper sees one format. Two guarantees matter more than the format:

* **No secrets in logs.** Values under secret-looking keys are replaced, and the *values* of the
  configured secrets (encryption keys, bridge secret, tokens, passwords inside database/Redis URLs) are
  scrubbed from every string, because a secret pasted into an error message is still a secret.
* **Correlation.** The request id of the HTTP request being served lives in a context variable and is
  added to every line, including lines written deep inside services and by third-party libraries.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from vpsbridge.config import Settings

REDACTED = "[redacted]"

#: Request id of the HTTP request currently served (``None`` outside requests).
request_id_var: ContextVar[str | None] = ContextVar("vpsbridge_request_id", default=None)

# Key names whose values are secrets. Matched on word parts, so ``api_key``, ``X-Api-Key``,
# ``bridgeSecret`` and ``credentials_enc`` match while ``keys_loaded`` and ``monkey`` do not.
_SECRET_WORDS = frozenset(
    {"password", "passwd", "secret", "token", "authorization", "key", "credentials", "cookie", "apikey"}
)
_SECRET_KEY_EXCEPTIONS = frozenset(
    {"token_id", "request_id", "idempotency_key", "dedupe_key", "resource_key"}
)
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
# Shorter values are too likely to occur by chance in unrelated text.
_MIN_SECRET_LEN = 6

_known_secrets: set[str] = set()


def is_secret_key(name: str) -> bool:
    """True when a mapping key names a secret (``password``, ``api_key``, ``Authorization`` ...)."""
    lowered = name.lower()
    if lowered in _SECRET_KEY_EXCEPTIONS:
        return False
    words = {w.lower() for w in _WORD_SPLIT.split(name) if w}
    return bool(words & _SECRET_WORDS) or lowered.replace("-", "_") in {"api_key", "apikey"}


def register_secret_values(values: Iterable[str | None]) -> None:
    """Remember secret values so that any log line containing one has it replaced.

    Capability code calls this when it decrypts a credential it may end up echoing in an error.
    """
    for value in values:
        if value and len(value) >= _MIN_SECRET_LEN:
            _known_secrets.add(value)


def _settings_secrets(settings: Settings) -> Iterator[str]:
    for secret in settings.encryption_keys:
        yield secret.get_secret_value()
    for field in (
        settings.bridge_secret,
        settings.metrics_token,
        settings.session_secret,
        settings.whmcs_api_secret,
        settings.whmcs_api_access_key,
    ):
        if field is not None:
            yield field.get_secret_value()
    for url in (settings.database_url, settings.redis_url):
        if url:
            password = urlsplit(url).password
            if password:
                yield password


def scrub(value: Any) -> Any:
    """Redact secrets inside an arbitrary value (mappings by key, strings by known secret values)."""
    if isinstance(value, str):
        for secret in tuple(_known_secrets):  # a snapshot: another thread may register one
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) and v is not None else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    return value


def redact_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor applying :func:`scrub` to every field of a log line."""
    out: EventDict = {}
    for key, value in event_dict.items():
        if key != "event" and is_secret_key(key) and value is not None:
            out[key] = REDACTED
        else:
            out[key] = scrub(value)
    return out


def _add_request_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


@contextmanager
def bound_request_id(request_id: str) -> Iterator[None]:
    """Make ``request_id`` appear in every log line written inside the block."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Configure structlog and stdlib logging once per process; safe to call again (tests do).

    ``stream`` defaults to stderr; tests pass a buffer to read the lines back.
    """
    register_secret_values(_settings_secrets(settings))
    level = getattr(logging, settings.log_level.upper())
    # Redaction runs last in the shared chain, so a record is already clean when it reaches *any*
    # handler (including ones a library or a test harness attaches), and after format_exc_info, so
    # traceback text is scrubbed too.
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    renderer: Processor
    if settings.log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("vpsbridge")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "vpsbridge":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn installs its own handlers; route its records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lib_logger = logging.getLogger(name)
        lib_logger.handlers.clear()
        lib_logger.propagate = True
    # The web app writes its own access line with the request id; uvicorn's would be a duplicate.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Alembic announces each of its plugins at INFO on every start; only the migrations matter.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(level, logging.WARNING))
    # SQLAlchemy's engine logger echoes statements and parameters at INFO; keep it quiet by default.
    logging.getLogger("sqlalchemy.engine").setLevel(max(level, logging.WARNING))
    # The HTTP client logs each request at INFO; the upstream layer already writes one redacted line
    # (with outcome and duration) per request, so the client's own would be an unredacted duplicate.
    for name in ("httpx2", "httpcore2", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger; ``name`` is shown as ``logger`` in each line."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def reset_logging() -> None:
    """Undo :func:`configure_logging` (tests that configure logging restore the defaults with this)."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "vpsbridge":
            root.removeHandler(existing)
    structlog.reset_defaults()
