"""The audit trail: who changed what, written in the same transaction as the change itself.

Writing the audit row inside the caller's session means a change and its record commit or roll back
together, so the trail can never claim something that did not happen (or miss something that did).
``details`` describe *what* changed (field names, new non-secret values); they must never carry a
secret, so services pass field names for credentials, never values.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from vpsbridge.store.models import AuditLog

ActorType = Literal["admin", "token", "cli", "bridge", "client", "system"]
ACTOR_TYPES: tuple[str, ...] = ("admin", "token", "cli", "bridge", "client", "system")

#: Keys whose values are replaced before a details dict is stored, as a last line of defence.
_SECRET_WORDS: tuple[str, ...] = ("password", "passwd", "secret", "token", "credential", "apikey")
_SECRET_WORDS += ("api_key", "private_key", "authorization")
#: ...unless the key only *describes* a secret (``token_prefix``, ``has_credentials``).
_DESCRIPTIVE_SUFFIXES = ("_id", "_prefix", "_name", "_type", "_count", "_scope")


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if lowered.startswith("has_") or lowered.endswith(_DESCRIPTIVE_SUFFIXES):
        return False
    return any(word in lowered for word in _SECRET_WORDS)


@dataclass(frozen=True)
class Actor:
    """Who performs an action: an operator account, an API token, the CLI user, the billing bridge..."""

    type: ActorType
    id: str | None = None
    ip: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ACTOR_TYPES:
            raise ValueError(f"unknown actor type {self.type!r}")

    @classmethod
    def cli(cls) -> Actor:
        """The operator running the command line, named by their login."""
        try:
            user = getpass.getuser()
        except Exception:  # no login name (container without passwd entry)
            user = None
        return cls(type="cli", id=user)

    @classmethod
    def system(cls, name: str | None = None) -> Actor:
        return cls(type="system", id=name)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if _is_secret_key(str(key)) and item is not None and not isinstance(item, bool):
                out[str(key)] = "[redacted]"
            else:
                out[str(key)] = _scrub(item)
        return out
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    object_type: str | None = None,
    object_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Add one audit row to ``session`` (flushed, committed with the caller's transaction)."""
    row = AuditLog(
        actor_type=actor.type,
        actor_id=actor.id,
        ip=actor.ip,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        details=_scrub(details or {}),
    )
    session.add(row)
    await session.flush()
    return row
