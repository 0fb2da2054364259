"""Record content in canonical form, and the rrset/change models every provider speaks.

PowerDNS refuses non-canonical content with 422 ("Not in expected format"), Cloudflare and HestiaCP
return names without the trailing dot, and every server keeps the case it was given. Normalising on
the way in *and* on the way out is what makes "is the server already right?" a plain equality test,
which in turn is what keeps an unchanged record from bumping a zone's SOA serial.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from vpsbridge.core.ipam import normalize_name

#: Record types whose content is a domain name (compared case-insensitively, trailing dot added).
NAME_TYPES = frozenset({"PTR", "CNAME", "NS", "DNAME", "ALIAS"})
DEFAULT_TTL = 3600


def normalize_content(rtype: str, content: str) -> str:
    """Canonical text for one record's content; raises ``ValueError`` for unusable A/AAAA/name content."""
    rtype = rtype.upper()
    text = content.strip()
    if rtype in NAME_TYPES:
        if not text or " " in text or ".." in text:
            raise ValueError(f"{content!r} is not a host name")
        return normalize_name(text)
    if rtype == "A":
        return str(ipaddress.IPv4Address(text))
    if rtype == "AAAA":
        return str(ipaddress.IPv6Address(text))
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class RRset:
    """All records of one name and type, as a server holds them (names and content canonical)."""

    name: str
    type: str
    ttl: int
    records: tuple[str, ...]
    comment: str | None = None

    @classmethod
    def build(
        cls, name: str, rtype: str, records: list[str] | tuple[str, ...], ttl: int, comment: str | None = None
    ) -> RRset:
        rtype = rtype.upper()
        contents = tuple(sorted({normalize_content(rtype, r) for r in records}))
        return cls(normalize_name(name), rtype, int(ttl), contents, comment)

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)


ChangeAction = Literal["replace", "delete"]


@dataclass(frozen=True, slots=True)
class Change:
    """One desired rrset state: ``replace`` (the full record set, as PowerDNS REPLACE) or ``delete``.

    ``comment=None`` leaves any existing comment alone; a string sets it.
    """

    action: ChangeAction
    name: str
    type: str
    records: tuple[str, ...] = ()
    ttl: int = DEFAULT_TTL
    comment: str | None = None

    @classmethod
    def replace(
        cls,
        name: str,
        rtype: str,
        records: list[str] | tuple[str, ...] | str,
        *,
        ttl: int = DEFAULT_TTL,
        comment: str | None = None,
    ) -> Change:
        values = (records,) if isinstance(records, str) else tuple(records)
        if not values:
            raise ValueError("a replace needs at least one record; use Change.delete to remove an rrset")
        rrset = RRset.build(name, rtype, values, ttl, comment)
        return cls("replace", rrset.name, rrset.type, rrset.records, rrset.ttl, comment)

    @classmethod
    def delete(cls, name: str, rtype: str) -> Change:
        return cls("delete", normalize_name(name), rtype.upper())

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)

    def satisfied_by(self, current: RRset | None) -> bool:
        """True when the server already holds exactly what this change asks for (nothing to send)."""
        if self.action == "delete":
            return current is None
        if current is None:
            return False
        same = current.ttl == self.ttl and set(current.records) == set(self.records)
        if self.comment is not None:
            same = same and (current.comment or "") == self.comment
        return same

    def describe(self) -> str:
        if self.action == "delete":
            return f"delete {self.name} {self.type}"
        return f"{self.name} {self.type} -> {', '.join(self.records)}"


def dedupe_changes(changes: list[Change] | tuple[Change, ...]) -> list[Change]:
    """Keep the last change per (name, type), deletes first, as servers reject duplicates in a batch.

    Deletes go first so that, for example, an A can become a CNAME in one request.
    """
    last: dict[tuple[str, str], Change] = {}
    for change in changes:
        last.pop(change.key, None)
        last[change.key] = change
    ordered = list(last.values())
    return [c for c in ordered if c.action == "delete"] + [c for c in ordered if c.action != "delete"]


@dataclass
class ApplyResult:
    """What :meth:`DnsProvider.apply` did for one zone."""

    zone: str
    applied: list[Change] = field(default_factory=list)
    unchanged: list[Change] = field(default_factory=list)
    failed: list[tuple[Change, str]] = field(default_factory=list)
    notified: bool | None = None
    """``True`` NOTIFY accepted, ``False`` it failed (logged in messages), ``None`` not attempted."""
    requests: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.applied)

    @property
    def ok(self) -> bool:
        return not self.failed
