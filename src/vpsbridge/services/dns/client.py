"""Reverse DNS as a server's owner sees it: per-address status and self-service PTR edits.

An edit is accepted only when every check passes, in this order (cheap first, upstream last):

1. the value is a host name (or empty, which deletes the PTR);
2. the address has had no edit in the last 10 seconds (``ctx.cache.hit``: atomic across processes
   with Redis, so two browser tabs cannot race past it);
3. the server owns the address *now*, asked afresh from its platform: the address itself or a host
   inside one of its routed IPv6 subnets;
4. the hostname's A/AAAA points back at the address (forward-confirmed), except for deletes.

Operators see the same statuses: ``ok`` (a PTR whose hostname resolves back), ``unverified`` (a PTR
whose hostname does not), ``missing``, ``no_zone``, ``error`` (the provider could not be asked) and
``disabled`` (a private address or a switched-off zone); routed subnets are listed as ``subnet``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from vpsbridge.core.ipam import address_belongs, normalize_name, parse_ip
from vpsbridge.dns.errors import DnsError
from vpsbridge.dns.ptr import ptr_status
from vpsbridge.dns.records import Change
from vpsbridge.services.audit import Actor, record
from vpsbridge.services.dns.addresses import fresh_addresses, is_private, load_target
from vpsbridge.services.dns.sync import DnsSession
from vpsbridge.services.errors import Conflict, Invalid, ServiceError

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

EDIT_WINDOW_SECONDS = 10.0
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class NotOwned(ServiceError):
    """The address is not the server's (any more)."""

    code = "forbidden"
    http_status = 403


class EditTooSoon(ServiceError):
    """The address was edited moments ago; ``retry_after`` says when the next edit is accepted."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, details={"retry_after": max(1, round(retry_after + 0.499))})
        self.retry_after = retry_after


def check_hostname(value: str) -> str:
    """A PTR target as a canonical FQDN; :class:`Invalid` says what is wrong with it.

    At least two labels (a bare word is never a usable reverse name), letters, digits and inner
    hyphens only, 63 characters per label and 253 overall.
    """
    text = value.strip().lower().rstrip(".")
    if not text:
        raise Invalid("the host name is empty", field="ptr")
    if len(text) > 253:
        raise Invalid("the host name is longer than 253 characters", field="ptr")
    parts = text.split(".")
    if len(parts) < 2:
        raise Invalid(
            f"{value.strip()!r} is not a fully qualified host name (e.g. vps1.example.com)", field="ptr"
        )
    for part in parts:
        if not _LABEL.match(part):
            raise Invalid(
                f"{value.strip()!r}: {part!r} is not a valid label (letters, digits and inner hyphens, "
                "at most 63 characters)",
                field="ptr",
            )
    if parts[-1].isdigit():
        raise Invalid(f"{value.strip()!r} looks like an address, not a host name", field="ptr")
    return normalize_name(text)


@dataclass
class PtrRow:
    """One line of the reverse-DNS table of a server."""

    ip: str | None
    status: str
    ptr: str | None = None
    ttl: int | None = None
    zone: str | None = None
    subnet: str | None = None
    message: str = ""

    STATES: ClassVar[tuple[str, ...]] = ("ok", "unverified", "missing", "no_zone", "error", "disabled")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def ptr_overview(ctx: AppContext, server_id: int, extra_ips: Sequence[str] = ()) -> list[PtrRow]:
    """The server's subnets, then each address with its PTR and status (one read per zone).

    ``extra_ips`` adds hosts inside the server's subnets that a client named (they have no row of
    their own); an address outside the server's subnets is ignored.
    """
    target = await load_target(ctx, server_id)
    rows = [
        PtrRow(None, "subnet", subnet=s, message="routed subnet: set a PTR per host") for s in target.subnets
    ]
    inside = [ip for ip in extra_ips if address_belongs(ip, (), target.subnets)]
    ips = list(dict.fromkeys([*target.addresses, *target.private, *inside]))
    include_private = ctx.settings.dns_ptr_private
    statuses: dict[str, PtrRow] = {}
    async with await DnsSession.open(ctx) as session:
        wanted = [ip for ip in ips if include_private or not (ip in target.private or is_private(ip))]
        for ip in ips:
            if ip not in wanted:
                statuses[ip] = PtrRow(ip, "disabled", message="private address: reverse DNS is off")
        by_provider, done = session.place(wanted)
        for entry in done:
            statuses[entry.ip] = PtrRow(entry.ip, entry.outcome, zone=entry.zone, message=entry.message)
        for provider_id, members in by_provider.items():
            try:
                provider = await session.pool.get(provider_id)
            except ServiceError as exc:
                statuses.update({ip: PtrRow(ip, "error", message=str(exc)) for ip in members})
                continue
            for status in await ptr_status(provider, members, session.confirmer):
                statuses[status.ip] = PtrRow(
                    status.ip, status.state, status.ptr, status.ttl, status.zone, message=status.message
                )
    return rows + [statuses[ip] for ip in ips]


@dataclass
class PtrEditResult:
    ip: str
    ptr: str | None
    outcome: str
    zone: str | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def set_client_ptr(
    ctx: AppContext, server_id: int, ip: str, value: str | None, actor: Actor
) -> PtrEditResult:
    """Set (or, with an empty value, delete) the PTR of one of the server's addresses.

    Raises :class:`Invalid` for a bad address or host name, :class:`EditTooSoon` within 10 s of the
    previous edit of the address, :class:`NotOwned` when the platform does not list the address for
    this server, :class:`Conflict` for a private address with private PTRs off. DNS outcomes
    (``written``, ``unchanged``, ``deleted``, ``absent``, ``unverified``, ``no_zone``, ``disabled``,
    ``failed``) are returned, not raised.
    """
    try:
        address = str(parse_ip(ip))
    except ValueError as exc:
        raise Invalid(f"{ip!r} is not an IP address: {exc}", field="ip") from None
    hostname = check_hostname(value) if value and value.strip() else None
    decision = await ctx.cache.hit(f"dns:ptr-edit:{address}", 1, EDIT_WINDOW_SECONDS)
    if not decision.allowed:
        raise EditTooSoon(
            f"the reverse DNS of {address} was changed moments ago; try again in "
            f"{max(1, round(decision.retry_after + 0.499))} s",
            retry_after=decision.retry_after,
        )
    fresh = await fresh_addresses(ctx, server_id)
    if not address_belongs(address, fresh.addresses, fresh.subnets):
        raise NotOwned(f"{address} is not an address of this server")
    if is_private(address) and not ctx.settings.dns_ptr_private:
        raise Conflict(f"{address} is a private address; reverse DNS is not managed for it")
    result = await _write(ctx, address, hostname)
    async with ctx.db.session() as db:
        details = {"ip": address, "ptr": hostname, "outcome": result.outcome, "server_id": server_id}
        await record(db, actor, "rdns.update", "server", server_id, details)
    return result


async def _write(ctx: AppContext, ip: str, hostname: str | None) -> PtrEditResult:
    async with await DnsSession.open(ctx) as session:
        found = session.zone_map.zone_of_ip(ip)
        if found is None:
            return PtrEditResult(
                ip, hostname, "no_zone", message="no configured reverse zone holds this address"
            )
        zone, owner = found
        if normalize_name(zone) in session.zone_map.disabled:
            return PtrEditResult(ip, hostname, "disabled", zone, "reverse DNS is switched off for this zone")
        try:
            provider = await session.pool.get(session.zone_map.provider_of[normalize_name(zone)])
            if hostname is None:
                applied = await provider.apply(zone, [Change.delete(owner, "PTR")])
                outcome = "deleted" if applied.applied else "absent"
            else:
                confirmed = await session.confirmer.confirms(hostname, ip)
                if confirmed is not True:
                    reason = (
                        f"{hostname.rstrip('.')} does not resolve to {ip}; create its A/AAAA record first"
                        if confirmed is False
                        else f"could not resolve {hostname.rstrip('.')} to confirm it; try again later"
                    )
                    return PtrEditResult(ip, hostname, "unverified", zone, reason)
                change = Change.replace(owner, "PTR", hostname, ttl=provider.default_ttl)
                applied = await provider.apply(zone, [change])
                outcome = "written" if applied.applied else "unchanged"
        except DnsError as exc:
            return PtrEditResult(ip, hostname, "failed", zone, str(exc))
        if applied.failed:
            return PtrEditResult(ip, hostname, "failed", zone, applied.failed[0][1])
        return PtrEditResult(ip, hostname.rstrip(".") if hostname else None, outcome, zone)
