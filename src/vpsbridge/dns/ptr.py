"""Reverse-DNS policy that needs no database: forward confirmation, the rename rule, batched syncs.

The rules, and why:

* **Forward-confirmed.** A PTR is written only when the hostname's A/AAAA points back at the address.
  Results are cached (negatives for a much shorter time). When we wrote the forward record ourselves
  a moment ago, :meth:`ForwardConfirmer.record_forward_write` replaces any cached negative with the
  addresses we wrote, so a fresh deploy's PTR is never skipped because the world has not caught up.
* **Rename changes only what is ours.** After a hostname change, a PTR is rewritten only when it still
  holds the *old* hostname; a client's custom PTR is kept.
* **Reconcile is additive.** It fills in missing PTRs and never overwrites (``force`` resets them).
* **Batched, and never fatal.** Addresses are grouped per zone and written with one ``apply`` per zone;
  a failure in one zone is reported for its addresses and the others carry on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from vpsbridge.core.ipam import build_zone_index, normalize_name, ptr_name
from vpsbridge.dns.base import DnsProvider
from vpsbridge.dns.errors import DnsError
from vpsbridge.dns.records import Change, RRset
from vpsbridge.dns.resolver import ForwardLookup, ForwardResolver

SyncMode = Literal["provision", "rename", "reconcile", "force", "delete"]
PtrOutcome = Literal[
    "written", "unchanged", "preserved", "unverified", "no_zone", "deleted", "absent", "failed", "error"
]
PtrState = Literal["ok", "unverified", "missing", "no_zone", "error"]


class KeyValueCache(Protocol):
    """The part of the application cache FCrDNS needs (``vpsbridge.cache.Cache`` satisfies it)."""

    async def get(self, key: str) -> Any: ...

    async def set(self, key: str, value: Any, ttl: float | None) -> None: ...

    async def delete(self, key: str) -> None: ...


def same_host(a: str | None, b: str | None) -> bool:
    """Host names equal ignoring case and the trailing dot (servers keep whatever case they got)."""
    if not a or not b:
        return False
    return normalize_name(a) == normalize_name(b)


@dataclass
class ForwardConfirmer:
    """Forward-confirmed reverse DNS with a shared cache, positives and negatives on separate TTLs."""

    resolver: ForwardResolver
    cache: KeyValueCache | None = None
    positive_ttl: float = 300.0
    negative_ttl: float = 30.0
    key_prefix: str = "dns:fwd:"

    def _key(self, hostname: str) -> str:
        return self.key_prefix + normalize_name(hostname)

    async def lookup(self, hostname: str) -> ForwardLookup:
        name = normalize_name(hostname)
        if self.cache is not None:
            cached = await self.cache.get(self._key(name))
            if isinstance(cached, dict) and "status" in cached:
                addresses = frozenset(ipaddress.ip_address(a) for a in cached.get("addresses", []))
                return ForwardLookup(name, cached["status"], addresses)
        result = await self.resolver.lookup(name)
        if self.cache is not None and result.definite:
            ttl = self.positive_ttl if result.addresses else self.negative_ttl
            value = {"status": result.status, "addresses": sorted(str(a) for a in result.addresses)}
            await self.cache.set(self._key(name), value, ttl)
        return result

    async def confirms(self, hostname: str, ip: str) -> bool | None:
        """``True``/``False`` when the forward lookup answered, ``None`` when it could not be done."""
        result = await self.lookup(hostname)
        if not result.definite:
            return None
        return result.has(ip)

    async def record_forward_write(self, hostname: str, addresses: Iterable[str]) -> None:
        """We just wrote these A/AAAA ourselves: trust them over anything cached (negatives included)."""
        if self.cache is None:
            return
        value = {"status": "ok", "addresses": sorted({str(ipaddress.ip_address(a)) for a in addresses})}
        await self.cache.set(self._key(hostname), value, self.positive_ttl)

    async def forget(self, hostname: str) -> None:
        if self.cache is not None:
            await self.cache.delete(self._key(hostname))


def rename_decision(current: RRset | None, old_hostname: str | None, new_hostname: str) -> PtrOutcome:
    """What a rename does to one address's PTR: write it, keep it (a custom PTR), or nothing to do."""
    if current is None or not current.records:
        return "written"
    if len(current.records) == 1 and same_host(current.records[0], new_hostname):
        return "unchanged"
    if len(current.records) == 1 and same_host(current.records[0], old_hostname):
        return "written"
    return "preserved"


@dataclass
class PtrEntry:
    """The result for one address of a sync."""

    ip: str
    outcome: PtrOutcome
    zone: str | None = None
    owner: str | None = None
    current: tuple[str, ...] = ()
    message: str = ""


@dataclass
class PtrSyncReport:
    entries: list[PtrEntry] = field(default_factory=list)
    zone_messages: dict[str, list[str]] = field(default_factory=dict)
    requests: int = 0

    def by_ip(self) -> dict[str, PtrEntry]:
        return {e.ip: e for e in self.entries}

    def count(self, *outcomes: PtrOutcome) -> int:
        return sum(e.outcome in outcomes for e in self.entries)

    @property
    def ok(self) -> bool:
        return not self.count("failed", "error")


@dataclass(frozen=True)
class PtrPlacement:
    """Addresses grouped by the zone holding their PTR; ``no_zone`` lists the homeless ones."""

    by_zone: dict[str, list[tuple[str, str]]]
    no_zone: list[str]


def place_addresses(ips: Iterable[str], zone_names: Iterable[str]) -> PtrPlacement:
    """Group addresses per zone (one zone-list parse for all of them) for batched writes."""
    index = build_zone_index(zone_names)
    by_zone: dict[str, list[tuple[str, str]]] = {}
    no_zone: list[str] = []
    for ip in ips:
        found = index.find(ip)
        if found is None:
            no_zone.append(ip)
        else:
            by_zone.setdefault(found[0], []).append((ip, found[1]))
    return PtrPlacement(by_zone, no_zone)


async def read_ptrs(provider: DnsProvider, zone: str, owners: Sequence[str]) -> dict[str, RRset | None]:
    """Current PTR rrsets of ``owners`` in ``zone`` (providers read the zone once for many owners)."""
    found = await provider.get_rrsets(zone, [(owner, "PTR") for owner in owners])
    return {owner: found.get((normalize_name(owner), "PTR")) for owner in owners}


async def sync_ptrs(
    provider: DnsProvider,
    ips: Sequence[str],
    hostname: str | None,
    *,
    mode: SyncMode,
    old_hostname: str | None = None,
    confirmer: ForwardConfirmer | None = None,
    ttl: int | None = None,
    comment: str | None = None,
) -> PtrSyncReport:
    """Bring the PTRs of ``ips`` in line with ``hostname`` according to ``mode``, one batch per zone.

    ``provision`` writes every PTR; ``rename`` rewrites only PTRs still naming ``old_hostname``;
    ``reconcile`` only adds missing ones; ``force`` resets all to ``hostname``; ``delete`` removes them.
    Without a ``confirmer`` forward confirmation is skipped (the caller trusts the hostname).
    """
    report = PtrSyncReport()
    if mode != "delete" and not hostname:
        raise ValueError(f"mode {mode!r} needs a hostname")
    target = normalize_name(hostname) if hostname else ""
    try:
        names = await provider.zone_names()
    except DnsError as exc:
        report.entries = [PtrEntry(ip, "error", message=str(exc)) for ip in ips]
        return report
    placement = place_addresses(ips, names)
    report.entries.extend(PtrEntry(ip, "no_zone", owner=ptr_name(ip)) for ip in placement.no_zone)
    confirmed: dict[str, bool | None] = {}

    for zone, members in placement.by_zone.items():
        entries = {ip: PtrEntry(ip, "unchanged", zone=zone, owner=owner) for ip, owner in members}
        changes: dict[str, Change] = {}
        reading = True
        try:
            current: dict[str, RRset | None] = {}
            if mode in ("rename", "reconcile"):
                current = await read_ptrs(provider, zone, [owner for _, owner in members])
            for ip, owner in members:
                entry = entries[ip]
                existing = current.get(owner)
                entry.current = existing.records if existing else ()
                if mode == "delete":
                    changes[ip] = Change.delete(owner, "PTR")
                    continue
                if mode == "rename":
                    decision = rename_decision(existing, old_hostname, target)
                    if decision != "written":
                        entry.outcome = decision
                        continue
                if mode == "reconcile" and existing is not None and existing.records:
                    entry.outcome = "unchanged" if existing.records == (target,) else "preserved"
                    continue
                if confirmer is not None:
                    if ip not in confirmed:
                        confirmed[ip] = await confirmer.confirms(target, ip)
                    if confirmed[ip] is not True:
                        entry.outcome = "unverified"
                        entry.message = (
                            f"{target} does not resolve to {ip}"
                            if confirmed[ip] is False
                            else f"could not resolve {target} to confirm it"
                        )
                        continue
                changes[ip] = Change.replace(
                    owner, "PTR", target, ttl=ttl or provider.default_ttl, comment=comment
                )
            reading = False
            if changes:
                result = await provider.apply(zone, list(changes.values()))
                report.requests += result.requests
                applied = {c.name for c in result.applied}
                failed = {c.name: message for c, message in result.failed}
                for ip, change in changes.items():
                    entry = entries[ip]
                    if change.name in failed:
                        entry.outcome, entry.message = "failed", failed[change.name]
                    elif mode == "delete":
                        entry.outcome = "deleted" if change.name in applied else "absent"
                    else:
                        entry.outcome = "written" if change.name in applied else "unchanged"
                if result.messages:
                    report.zone_messages.setdefault(zone, []).extend(result.messages)
        except DnsError as exc:
            # A failed read leaves every address of the zone undecided; a failed write only the
            # addresses that were being written (a preserved custom PTR stays "preserved").
            for ip in entries:
                if reading or ip in changes:
                    entries[ip].outcome, entries[ip].message = "error", str(exc)
            report.zone_messages.setdefault(zone, []).append(str(exc))
        report.entries.extend(entries.values())
    order = {ip: n for n, ip in enumerate(ips)}
    report.entries.sort(key=lambda e: order.get(e.ip, len(order)))
    return report


@dataclass
class PtrStatus:
    ip: str
    state: PtrState
    zone: str | None = None
    ptr: str | None = None
    ttl: int | None = None
    message: str = ""


async def ptr_status(
    provider: DnsProvider, ips: Sequence[str], confirmer: ForwardConfirmer | None = None
) -> list[PtrStatus]:
    """Per-address PTR state for display: ok (forward-confirmed), unverified, missing, no_zone, error."""
    try:
        names = await provider.zone_names()
    except DnsError as exc:
        return [PtrStatus(ip, "error", message=str(exc)) for ip in ips]
    placement = place_addresses(ips, names)
    statuses = {ip: PtrStatus(ip, "no_zone") for ip in placement.no_zone}
    for zone, members in placement.by_zone.items():
        try:
            current = await read_ptrs(provider, zone, [owner for _, owner in members])
        except DnsError as exc:
            statuses.update({ip: PtrStatus(ip, "error", zone, message=str(exc)) for ip, _ in members})
            continue
        for ip, owner in members:
            rrset = current.get(owner)
            if rrset is None or not rrset.records:
                statuses[ip] = PtrStatus(ip, "missing", zone)
                continue
            value = rrset.records[0]
            state: PtrState = "ok"
            if confirmer is not None and await confirmer.confirms(value, ip) is not True:
                state = "unverified"
            statuses[ip] = PtrStatus(ip, state, zone, value.rstrip("."), rrset.ttl)
    return [statuses[ip] for ip in ips]
