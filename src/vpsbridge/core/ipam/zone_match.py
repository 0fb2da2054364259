"""Choosing the zone that holds an address's PTR record.

Two rules, in order:

1. An RFC 2317 classless zone whose range covers the address wins over everything else: once a range
   is delegated, a PTR written into the parent /24 is occluded by the CNAME and never answered. When
   classless zones nest, the smallest range wins.
2. Otherwise the longest zone whose *labels* are a suffix of the PTR name's labels. A plain string
   ``endswith`` puts ``1.12.0.192.in-addr.arpa.`` (192.0.12.1) into ``2.0.192.in-addr.arpa.``
   because ``"12"`` ends with ``"2"``; comparing whole labels cannot make that mistake.

Zone names come from operators and from servers, so bad ones (empty labels, unaligned ranges, non-nibble
labels under ``ip6.arpa.``) are skipped with a warning on the standard ``logging`` logger and kept as
:attr:`ZoneIndex.diagnostics` for display, instead of failing the whole lookup.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from vpsbridge.core.ipam.classless import ClasslessZone, ZoneNameError, parse_classless_zone
from vpsbridge.core.ipam.reverse_names import IpLike, labels, normalize_name, parse_ip, ptr_name

log = logging.getLogger("vpsbridge.core.ipam")

_HEX = frozenset("0123456789abcdef")


def _label_problem(canonical: str) -> str | None:
    """Why a (non-classless) zone name is unusable, or ``None`` when it is fine."""
    text = canonical[:-1] if canonical.endswith(".") else canonical
    if not text:
        return None  # the root zone: legal, if unusual
    parts = text.split(".")
    if any(not part for part in parts):
        return f"{canonical}: empty label"
    if any(len(part) > 63 for part in parts) or len(canonical) > 254:
        return f"{canonical}: label or name too long"
    if parts[-2:] == ["in-addr", "arpa"]:
        octets = parts[:-2]
        if len(octets) > 4:
            return f"{canonical}: more than four octets under in-addr.arpa."
        for octet in octets:
            if not octet.isdigit() or int(octet) > 255 or (len(octet) > 1 and octet.startswith("0")):
                return f"{canonical}: {octet!r} is not an address octet"
    elif parts[-2:] == ["ip6", "arpa"]:
        nibbles = parts[:-2]
        if len(nibbles) > 32:
            return f"{canonical}: more than 32 nibbles under ip6.arpa."
        for nibble in nibbles:
            if len(nibble) != 1 or nibble not in _HEX:
                return f"{canonical}: {nibble!r} is not a single hex nibble"
    return None


@dataclass(frozen=True)
class ZoneIndex:
    """Pre-parsed zone list, so that placing thousands of addresses costs one parse of the zones."""

    by_canonical: dict[str, str] = field(default_factory=dict)
    """Canonical name → the name as the caller spelled it (returned to them unchanged)."""
    classless_by_parent: dict[str, tuple[tuple[ClasslessZone, str], ...]] = field(default_factory=dict)
    diagnostics: tuple[str, ...] = ()

    def find(self, ip: IpLike) -> tuple[str, str] | None:
        """``(zone as given, PTR owner name)`` for ``ip``, or ``None`` when no zone holds it."""
        address = parse_ip(ip)
        owner = ptr_name(address)
        if isinstance(address, ipaddress.IPv4Address):
            octet = int(address) & 0xFF
            parent = owner.split(".", 1)[1]
            best: tuple[ClasslessZone, str] | None = None
            for zone, original in self.classless_by_parent.get(parent, ()):
                if zone.covers(octet) and (best is None or zone.size < best[0].size):
                    best = (zone, original)
            if best is not None:
                return best[1], best[0].record_name(octet)
        owner_labels = labels(owner)
        for start in range(len(owner_labels) + 1):
            candidate = ".".join(owner_labels[start:]) + "." if start < len(owner_labels) else "."
            found = self.by_canonical.get(candidate)
            if found is not None:
                return found, owner
        return None


def build_zone_index(zone_names: Iterable[str]) -> ZoneIndex:
    """Parse ``zone_names`` once; unusable names are skipped and described in ``diagnostics``."""
    return _build_cached(tuple(zone_names))


@lru_cache(maxsize=64)
def _build_cached(zone_names: tuple[str, ...]) -> ZoneIndex:
    # Cached on the exact tuple: a reconcile over thousands of addresses reuses one zone list, and the
    # warnings for a bad zone are logged once per distinct list rather than once per address.
    by_canonical: dict[str, str] = {}
    classless: dict[str, list[tuple[ClasslessZone, str]]] = {}
    diagnostics: list[str] = []
    for original in zone_names:
        if not isinstance(original, str) or not original.strip():
            diagnostics.append(f"{original!r}: empty zone name")
            continue
        canonical = normalize_name(original)
        try:
            parsed = parse_classless_zone(canonical)
        except ZoneNameError as exc:
            diagnostics.append(str(exc))
            continue
        if parsed is not None:
            classless.setdefault(parsed.parent, []).append((parsed, original))
            continue
        problem = _label_problem(canonical)
        if problem is not None:
            diagnostics.append(problem)
            continue
        by_canonical.setdefault(canonical, original)
    for message in diagnostics:
        log.warning("ignoring zone %s", message)
    return ZoneIndex(
        by_canonical=by_canonical,
        classless_by_parent={parent: tuple(zones) for parent, zones in classless.items()},
        diagnostics=tuple(diagnostics),
    )


def find_zone(ip: IpLike, zone_names: Iterable[str]) -> tuple[str, str] | None:
    """The zone (as spelled in ``zone_names``) that must hold ``ip``'s PTR, and the record's owner name.

    Classless zones covering the address win; otherwise the longest label-aware suffix match; ``None``
    when nothing matches. Unusable zone names are ignored with a logged warning.
    """
    return build_zone_index(zone_names).find(ip)


def zone_name_problems(zone_names: Iterable[str]) -> list[str]:
    """Readable reasons why some of ``zone_names`` will be ignored (for test-connection screens)."""
    return list(build_zone_index(zone_names).diagnostics)


def zone_for_name(name: str, zone_names: Iterable[str]) -> str | None:
    """The zone (as spelled in ``zone_names``) holding ``name``: the longest label-aware suffix match.

    Used for forward records: ``vps1.eu.example.com`` goes to ``eu.example.com.`` when both it and
    ``example.com.`` are configured, and never to ``ample.com.``.
    """
    index = build_zone_index(zone_names)
    parts = labels(name)
    for start in range(len(parts) + 1):
        candidate = ".".join(parts[start:]) + "." if start < len(parts) else "."
        found = index.by_canonical.get(candidate)
        if found is not None:
            return found
    return None
