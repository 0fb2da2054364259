"""The DNS provider interface (shaped like octodns's providers) and the value objects it returns.

A provider is asked three things by the PTR and forward-record logic: which zones it serves, what an
rrset currently holds, and to make a *batch* of rrsets look a certain way in one zone. Batching is the
point: a reconcile of a few thousand addresses must cost one request per zone, not one per address,
and an rrset that already holds the wanted data must cost nothing (no write, no serial bump, no NOTIFY).

Capability flags say what a back-end can do so callers can refuse early with a clear message instead
of discovering it from a vendor's 400: ``SUPPORTS`` (record types), ``SUPPORTS_CLASSLESS`` (which
RFC 2317 spellings may be used as zone names), ``SUPPORTS_BATCH`` and ``SUPPORTS_NOTIFY``.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from vpsbridge.core.ipam import ClasslessStyle, ZoneNameError, normalize_name, parse_classless_zone
from vpsbridge.dns.errors import DnsConfigError, DnsUnsupported, DnsZoneNotFound
from vpsbridge.dns.records import ApplyResult, Change, RRset
from vpsbridge.http import Recorder

ALL_CLASSLESS: frozenset[ClasslessStyle] = frozenset({"cidr", "block", "dash"})


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    """A zone as the server lists it; ``id`` is the server's own identifier (use it in URLs)."""

    name: str
    id: str
    kind: str | None = None
    serial: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_reverse(self) -> bool:
        return self.name.endswith(("in-addr.arpa.", "ip6.arpa."))


@dataclass
class ConnectionReport:
    """Result of :meth:`DnsProvider.test_connection`, shown as-is on the provider's settings page."""

    ok: bool
    message: str
    version: str | None = None
    zones: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class DnsProvider(abc.ABC):
    """Base class of DNS back-ends. Subclasses implement the ``_``-less abstract methods below."""

    TYPE: ClassVar[str]
    LABEL: ClassVar[str]
    SUPPORTS: ClassVar[frozenset[str]] = frozenset({"A", "AAAA", "PTR", "CNAME", "TXT"})
    SUPPORTS_CLASSLESS: ClassVar[frozenset[ClasslessStyle]] = frozenset()
    SUPPORTS_BATCH: ClassVar[bool] = False
    SUPPORTS_NOTIFY: ClassVar[bool] = False
    #: Credential keys the provider needs (the settings form asks for these, stored encrypted).
    CREDENTIAL_FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, *, name: str | None = None, default_ttl: int = 3600, zone_cache_seconds: float = 60.0
    ) -> None:
        self.name = name or self.TYPE
        self.default_ttl = default_ttl
        self.zone_cache_seconds = zone_cache_seconds
        #: The last zone listing and when it was taken; back-ends reset ``_zones`` to ``None`` when
        #: the server says a listed zone is gone.
        self._zones: list[ZoneInfo] | None = None
        self._zones_at = 0.0

    @classmethod
    @abc.abstractmethod
    def from_config(
        cls,
        *,
        url: str | None,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        recorder: Recorder | None = None,
        transport: Any = None,
    ) -> Self:
        """Build from a stored provider row; raises :class:`DnsConfigError` with what is missing."""

    # --- the interface --------------------------------------------------------------------------

    async def zones(self, *, refresh: bool = False) -> list[ZoneInfo]:
        """Zones the credentials can see, cached for ``zone_cache_seconds`` (``refresh`` forces a
        new listing): every PTR placement needs the list, and it rarely changes."""
        fresh = time.monotonic() - self._zones_at < self.zone_cache_seconds
        if self._zones is not None and fresh and not refresh:
            return self._zones
        self._zones = await self._list_zones()
        self._zones_at = time.monotonic()
        return self._zones

    @abc.abstractmethod
    async def _list_zones(self) -> list[ZoneInfo]:
        """Ask the server for its zones (uncached)."""

    @abc.abstractmethod
    async def get_rrset(self, zone: str, name: str, rtype: str) -> RRset | None:
        """The current rrset, or ``None`` when the server confirms there is none."""

    async def get_rrsets(
        self, zone: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], RRset | None]:
        """Several rrsets of one zone; back-ends override it to read the zone once instead of per key."""
        found: dict[tuple[str, str], RRset | None] = {}
        for name, rtype in keys:
            key = (normalize_name(name), rtype.upper())
            found[key] = await self.get_rrset(zone, key[0], key[1])
        return found

    @abc.abstractmethod
    async def apply(self, zone: str, changes: Sequence[Change]) -> ApplyResult:
        """Make ``changes`` true in ``zone`` with as few requests as the API allows.

        Reads first and skips changes the server already satisfies, so a repeated sync writes nothing.
        A record the server refuses lands in ``ApplyResult.failed`` without sinking the rest of the
        batch; transport failures raise :class:`~vpsbridge.dns.errors.DnsUnavailable`.
        """

    async def notify(self, zone: str) -> bool:
        """Ask the server to NOTIFY secondaries; ``False`` where the back-end has no such concept."""
        return False

    @abc.abstractmethod
    async def test_connection(self) -> ConnectionReport:
        """Check URL and credentials and report the version and configuration warnings."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- shared helpers -------------------------------------------------------------------------

    async def zone_names(self) -> list[str]:
        return [z.name for z in await self.zones()]

    async def zone(self, zone: str) -> ZoneInfo:
        """The listed zone called ``zone``; :class:`DnsZoneNotFound` when the server does not have it."""
        self.check_zone_supported(zone)
        wanted = normalize_name(zone)
        for refresh in (False, True):
            for info in await self.zones(refresh=refresh):
                if info.name == wanted:
                    return info
        raise DnsZoneNotFound(
            f"{self.LABEL}: zone {wanted} does not exist on the server (create it there first)",
            provider=self.name,
            zone=wanted,
        )

    def check_zone_supported(self, zone: str) -> None:
        """Refuse classless zone spellings this back-end cannot hold, naming the one it can."""
        try:
            parsed = parse_classless_zone(zone)
        except ZoneNameError as exc:
            raise DnsConfigError(f"{self.LABEL}: {exc}", provider=self.name, zone=zone) from None
        if parsed is None or parsed.style in self.SUPPORTS_CLASSLESS:
            return
        if not self.SUPPORTS_CLASSLESS:
            raise DnsUnsupported(
                f"{self.LABEL} cannot host RFC 2317 classless zones such as {parsed.name}; host the range "
                f"{parsed.first}-{parsed.last} of {parsed.parent} on PowerDNS, or have the /24's owner set "
                "the PTRs",
                provider=self.name,
                zone=parsed.name,
            )
        allowed = " or ".join(sorted(self.SUPPORTS_CLASSLESS))
        raise DnsUnsupported(
            f"{self.LABEL} only accepts the {allowed} spelling of classless zones; {parsed.name} uses the "
            f"{parsed.style} spelling",
            provider=self.name,
            zone=parsed.name,
        )

    def check_changes_supported(self, zone: str, changes: Sequence[Change]) -> None:
        unsupported = sorted({c.type for c in changes} - self.SUPPORTS)
        if unsupported:
            raise DnsUnsupported(
                f"{self.LABEL} does not support record type(s) {', '.join(unsupported)}",
                provider=self.name,
                zone=zone,
            )
        wanted = normalize_name(zone)
        for change in changes:
            if change.name != wanted and not change.name.endswith("." + wanted):
                raise DnsUnsupported(
                    f"{change.name} is outside zone {wanted}", provider=self.name, zone=wanted
                )


def setting_int(settings: Mapping[str, Any], key: str, default: int) -> int:
    value = settings.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DnsConfigError(f"setting {key!r} must be a whole number, got {value!r}") from None


def setting_float(settings: Mapping[str, Any], key: str, default: float) -> float:
    value = settings.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DnsConfigError(f"setting {key!r} must be a number, got {value!r}") from None


def setting_bool(settings: Mapping[str, Any], key: str, default: bool) -> bool:
    value = settings.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    if isinstance(value, int):
        return bool(value)
    raise DnsConfigError(f"setting {key!r} must be true or false, got {value!r}")


def credential(credentials: Mapping[str, str], key: str, label: str) -> str:
    """A required credential, trimmed (a pasted key with a trailing newline is the classic 401)."""
    value = str(credentials.get(key) or "").strip()
    if not value:
        raise DnsConfigError(f"{label}: the credential {key!r} is missing")
    return value
