"""Setting a server's DNS records: forward A/AAAA first, then PTRs, spread over every provider.

A server's addresses can live in zones of different providers (IPv4 on PowerDNS, IPv6 on Cloudflare),
so addresses are placed with the zone map from ``dns_zones`` and each provider gets one batched
:func:`~vpsbridge.dns.ptr.sync_ptrs` call. Nothing here raises for DNS trouble: every failure
becomes an entry with a message, counted in the summary the job shows, because a deploy or a
termination must never fail on DNS.

The fleet reconcile (:func:`reconcile_fleet`) reads each reverse zone once for all servers and writes
one batch per zone, so its cost grows with the number of zones, not of addresses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vpsbridge.core.ipam import normalize_name, ptr_name
from vpsbridge.dns.base import DnsProvider
from vpsbridge.dns.errors import DnsError
from vpsbridge.dns.forward import sync_forward
from vpsbridge.dns.ptr import ForwardConfirmer, SyncMode, place_addresses, read_ptrs, sync_ptrs
from vpsbridge.dns.records import Change
from vpsbridge.services.dns.addresses import GONE_STATES, ServerTarget, load_targets
from vpsbridge.services.dns.catalog import ProviderPool, ZoneMap, load_zone_map
from vpsbridge.services.dns.confirm import build_confirmer

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

LogFn = Callable[[str, str], Awaitable[None]]

#: Per-address outcomes counted as success, as "skipped on purpose", and as errors.
OK_OUTCOMES = frozenset({"written", "unchanged", "preserved", "deleted", "absent"})
ERROR_OUTCOMES = frozenset({"failed", "error"})


async def _quiet(message: str, level: str = "info") -> None:
    return None


@dataclass
class AddressResult:
    ip: str
    outcome: str
    zone: str | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ip": self.ip, "outcome": self.outcome, "zone": self.zone, "message": self.message}


@dataclass
class ForwardOutcome:
    """The forward part of a sync: counts of rrsets written/kept vs refused, plus messages."""

    zone: str | None = None
    ok: int = 0
    errors: int = 0
    written: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "ok": self.ok,
            "errors": self.errors,
            "written": list(self.written),
            "messages": list(self.messages),
        }


@dataclass
class ReverseOutcome:
    entries: list[AddressResult] = field(default_factory=list)
    zone_messages: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return sum(e.outcome in OK_OUTCOMES for e in self.entries)

    @property
    def errors(self) -> int:
        return sum(e.outcome in ERROR_OUTCOMES for e in self.entries)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.entries:
            counts[entry.outcome] = counts.get(entry.outcome, 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "counts": self.counts(),
            "entries": [e.as_dict() for e in self.entries],
            "zones": {z: list(m) for z, m in self.zone_messages.items()},
        }


def summarize(forward: ForwardOutcome | None, reverse: ReverseOutcome | None) -> dict[str, Any]:
    """The job result operators read: forward ok/err, reverse ok/err and per-zone messages."""
    forward = forward or ForwardOutcome()
    reverse = reverse or ReverseOutcome()
    zones: dict[str, list[str]] = {z: list(m) for z, m in reverse.zone_messages.items()}
    if forward.zone and forward.messages:
        zones.setdefault(forward.zone, []).extend(forward.messages)
    return {
        "forward_ok": forward.ok,
        "forward_errors": forward.errors,
        "reverse_ok": reverse.ok,
        "reverse_errors": reverse.errors,
        "reverse_counts": reverse.counts(),
        "zones": zones,
        "addresses": [e.as_dict() for e in reverse.entries],
    }


def in_zone(name: str, zone: str) -> bool:
    host, parent = normalize_name(name), normalize_name(zone)
    return host == parent or host.endswith("." + parent)


class DnsSession:
    """One sync's worth of shared state: the zone map, open providers and the FCrDNS confirmer."""

    def __init__(self, ctx: AppContext, zone_map: ZoneMap, pool: ProviderPool) -> None:
        self.ctx = ctx
        self.zone_map = zone_map
        self.pool = pool
        self.confirmer: ForwardConfirmer = build_confirmer(ctx, zone_map, pool)

    @classmethod
    async def open(cls, ctx: AppContext) -> DnsSession:
        return cls(ctx, await load_zone_map(ctx), ProviderPool(ctx))

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def __aenter__(self) -> DnsSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- forward --------------------------------------------------------------------------------

    async def forward(
        self,
        target: ServerTarget,
        *,
        delete: bool = False,
        old_hostname: str | None = None,
        log: LogFn = _quiet,
    ) -> ForwardOutcome:
        """A/AAAA of the hostname in the configured forward zone (removed when ``delete``)."""
        zone = target.forward_zone
        outcome = ForwardOutcome(zone=zone)
        if zone is None or not target.hostname:
            return outcome
        if zone not in self.zone_map.provider_of:
            outcome.errors += 1
            outcome.messages.append(f"forward zone {zone} is not served by any configured DNS provider")
            await log(outcome.messages[-1], "warning")
            return outcome
        if zone in self.zone_map.disabled:
            outcome.messages.append(f"forward zone {zone} is disabled; forward records left alone")
            await log(outcome.messages[-1], "info")
            return outcome
        if not in_zone(target.hostname, zone):
            outcome.messages.append(f"{target.hostname} is outside the forward zone {zone}; not written")
            await log(outcome.messages[-1], "warning")
            return outcome
        try:
            provider = await self.pool.get(self.zone_map.provider_of[zone])
        except Exception as exc:  # a provider row that cannot be built (bad settings)
            outcome.errors += 1
            outcome.messages.append(str(exc))
            await log(f"forward: {exc}", "error")
            return outcome
        include_private = self.ctx.settings.dns_ptr_private
        addresses = [] if delete else target.ptr_addresses(include_private)
        names = [target.hostname]
        renamed = old_hostname and normalize_name(old_hostname) != normalize_name(target.hostname)
        if renamed and old_hostname and not delete and in_zone(old_hostname, zone):
            names.insert(0, old_hostname)
        for name in names:
            stale = name != target.hostname
            result = await sync_forward(
                provider,
                name,
                [] if stale else addresses,
                zone=zone,
                prune=True,
                confirmer=None if (delete or stale) else self.confirmer,
            )
            if stale:
                await self.confirmer.forget(name)
            if result.error is not None:
                outcome.errors += 1
                outcome.messages.append(f"{normalize_name(name)}: {result.error}")
                await log(f"forward {normalize_name(name)}: {result.error}", "error")
                continue
            applied = result.result.applied if result.result else []
            for change, message in result.result.failed if result.result else []:
                outcome.errors += 1
                outcome.messages.append(f"{change.describe()}: {message}")
                await log(f"forward {change.describe()}: {message}", "error")
            outcome.ok += len(applied) + (len(result.result.unchanged) if result.result else 0)
            outcome.messages.extend(result.messages)
            for change in applied:
                await log(f"forward {change.describe()}", "info")
                if change.action == "replace":
                    outcome.written.extend(change.records)
        if delete:
            await self.confirmer.forget(target.hostname)
        return outcome

    async def prime(self, hostname: str, written: Sequence[str]) -> None:
        """Re-tell the confirmer about forward records written earlier in this job (another process)."""
        if written:
            await self.confirmer.record_forward_write(hostname, written)

    # --- reverse --------------------------------------------------------------------------------

    def place(self, ips: Sequence[str]) -> tuple[dict[int, list[str]], list[AddressResult]]:
        """Addresses grouped by provider; homeless and disabled addresses as ready-made results."""
        by_provider: dict[int, list[str]] = {}
        done: list[AddressResult] = []
        for ip in ips:
            found = self.zone_map.zone_of_ip(ip)
            if found is None:
                done.append(AddressResult(ip, "no_zone", None, f"no configured zone holds {ptr_name(ip)}"))
            elif normalize_name(found[0]) in self.zone_map.disabled:
                done.append(AddressResult(ip, "disabled", found[0], "reverse zone disabled"))
            else:
                by_provider.setdefault(self.zone_map.provider_of[normalize_name(found[0])], []).append(ip)
        return by_provider, done

    async def reverse(
        self,
        ips: Sequence[str],
        hostname: str | None,
        mode: SyncMode,
        *,
        old_hostname: str | None = None,
        log: LogFn = _quiet,
    ) -> ReverseOutcome:
        outcome = ReverseOutcome()
        by_provider, done = self.place(ips)
        outcome.entries.extend(done)
        for provider_id, members in by_provider.items():
            try:
                provider = await self.pool.get(provider_id)
            except Exception as exc:
                outcome.entries.extend(AddressResult(ip, "error", None, str(exc)) for ip in members)
                continue
            report = await sync_ptrs(
                provider,
                members,
                hostname,
                mode=mode,
                old_hostname=old_hostname,
                confirmer=None if mode == "delete" else self.confirmer,
            )
            outcome.entries.extend(AddressResult(e.ip, e.outcome, e.zone, e.message) for e in report.entries)
            for zone, messages in report.zone_messages.items():
                outcome.zone_messages.setdefault(zone, []).extend(messages)
        order = {ip: n for n, ip in enumerate(ips)}
        outcome.entries.sort(key=lambda e: order.get(e.ip, len(order)))
        for entry in outcome.entries:
            level = "error" if entry.outcome in ERROR_OUTCOMES else "info"
            if entry.outcome == "unverified":
                level = "warning"
            tail = f" ({entry.message})" if entry.message else ""
            await log(f"PTR {entry.ip}: {entry.outcome}{tail}", level)
        return outcome


async def sync_server_now(
    ctx: AppContext,
    target: ServerTarget,
    mode: SyncMode,
    *,
    old_hostname: str | None = None,
    log: LogFn = _quiet,
) -> dict[str, Any]:
    """Forward then reverse records of one server in this process; returns the job-style summary."""
    async with await DnsSession.open(ctx) as session:
        delete = mode == "delete"
        forward = await session.forward(target, delete=delete, old_hostname=old_hostname, log=log)
        ips = target.ptr_addresses(ctx.settings.dns_ptr_private)
        reverse = await session.reverse(ips, target.hostname, mode, old_hostname=old_hostname, log=log)
    return summarize(forward, reverse)


# --- fleet reconcile -----------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    servers: int = 0
    reverse: ReverseOutcome = field(default_factory=ReverseOutcome)
    requests: int = 0
    conflicts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "servers": self.servers,
            "requests": self.requests,
            "conflicts": list(self.conflicts),
            **{k: v for k, v in summarize(None, self.reverse).items() if not k.startswith("forward")},
        }


async def reconcile_fleet(
    ctx: AppContext,
    *,
    force: bool = False,
    server_ids: Sequence[int] | None = None,
    log: LogFn = _quiet,
) -> ReconcileReport:
    """Add every missing PTR of every live server (``force``: also reset PTRs to the hostname).

    Additive by default: a PTR that exists is never changed, whoever wrote it. Each reverse zone is
    read once for all the addresses it holds and written with one batch.
    """
    report = ReconcileReport()
    include_private = ctx.settings.dns_ptr_private
    hostname_of: dict[str, str] = {}
    for target in await load_targets(ctx, server_ids):
        if target.state in GONE_STATES or not target.hostname:
            continue
        report.servers += 1
        for ip in target.ptr_addresses(include_private):
            if ip in hostname_of and hostname_of[ip] != target.hostname:
                report.conflicts.append(f"{ip} is assigned to more than one server; left alone")
                hostname_of[ip] = ""
                continue
            hostname_of[ip] = target.hostname
    ips = [ip for ip, host in hostname_of.items() if host]
    async with await DnsSession.open(ctx) as session:
        by_provider, done = session.place(ips)
        report.reverse.entries.extend(done)
        for provider_id, members in by_provider.items():
            try:
                provider = await session.pool.get(provider_id)
                names = await provider.zone_names()
            except Exception as exc:
                report.reverse.entries.extend(AddressResult(ip, "error", None, str(exc)) for ip in members)
                await log(f"{session.pool.label(provider_id)}: {exc}", "error")
                continue
            placement = place_addresses(members, names)
            report.reverse.entries.extend(AddressResult(ip, "no_zone") for ip in placement.no_zone)
            for zone, pairs in placement.by_zone.items():
                results = await _reconcile_zone(session, provider, zone, pairs, hostname_of, force, report)
                report.reverse.entries.extend(results)
                written = sum(r.outcome == "written" for r in results)
                errors = sum(r.outcome in ERROR_OUTCOMES for r in results)
                await log(
                    f"zone {zone}: {len(results)} addresses, {written} written, {errors} errors",
                    "error" if errors else "info",
                )
    return report


async def _reconcile_zone(
    session: DnsSession,
    provider: DnsProvider,
    zone: str,
    pairs: list[tuple[str, str]],
    hostname_of: dict[str, str],
    force: bool,
    report: ReconcileReport,
) -> list[AddressResult]:
    results: dict[str, AddressResult] = {}
    changes: dict[str, Change] = {}
    try:
        current = await read_ptrs(provider, zone, [owner for _, owner in pairs])
    except DnsError as exc:
        report.reverse.zone_messages.setdefault(zone, []).append(str(exc))
        return [AddressResult(ip, "error", zone, str(exc)) for ip, _ in pairs]
    for ip, owner in pairs:
        target = normalize_name(hostname_of[ip])
        existing = current.get(owner)
        if existing is not None and existing.records:
            if existing.records == (target,):
                results[ip] = AddressResult(ip, "unchanged", zone)
                continue
            if not force:
                results[ip] = AddressResult(ip, "preserved", zone, f"holds {', '.join(existing.records)}")
                continue
        confirmed = await session.confirmer.confirms(target, ip)
        if confirmed is not True:
            reason = "does not resolve to" if confirmed is False else "could not be resolved to confirm"
            results[ip] = AddressResult(ip, "unverified", zone, f"{target} {reason} {ip}")
            continue
        changes[ip] = Change.replace(owner, "PTR", target, ttl=provider.default_ttl)
    if changes:
        try:
            applied = await provider.apply(zone, list(changes.values()))
        except DnsError as exc:
            report.reverse.zone_messages.setdefault(zone, []).append(str(exc))
            results.update({ip: AddressResult(ip, "error", zone, str(exc)) for ip in changes})
        else:
            report.requests += applied.requests
            failed = {c.name: message for c, message in applied.failed}
            names = {c.name for c in applied.applied}
            for ip, change in changes.items():
                if change.name in failed:
                    results[ip] = AddressResult(ip, "failed", zone, failed[change.name])
                else:
                    results[ip] = AddressResult(ip, "written" if change.name in names else "unchanged", zone)
            if applied.messages:
                report.reverse.zone_messages.setdefault(zone, []).extend(applied.messages)
    return [results[ip] for ip, _ in pairs]
