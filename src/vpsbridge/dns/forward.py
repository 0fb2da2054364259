"""Forward records (A/AAAA) for a server's hostname, written before its PTRs.

The operator configures a forward zone (per product or pool); the server's hostname gets one A rrset
with its IPv4 addresses and one AAAA rrset with its IPv6 ones. Writing them first, and telling the
forward-confirmation cache what was written, is what lets the PTRs of a brand-new server pass the
forward check in the same job even though no resolver has seen the new records yet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from vpsbridge.core.ipam import normalize_name, zone_for_name
from vpsbridge.dns.base import DnsProvider
from vpsbridge.dns.errors import DnsError
from vpsbridge.dns.ptr import ForwardConfirmer
from vpsbridge.dns.records import ApplyResult, Change


def forward_changes(
    hostname: str, addresses: Sequence[str], *, ttl: int, prune: bool = False
) -> list[Change]:
    """A and AAAA changes for ``hostname``; ``prune`` deletes the rrset of a family with no address.

    Pruning is right when vpsbridge owns the name (a server hostname in the operator's zone): a server
    that lost its IPv6 must not keep advertising it.
    """
    v4 = sorted({str(a) for a in map(ipaddress.ip_address, addresses) if a.version == 4})
    v6 = sorted({str(a) for a in map(ipaddress.ip_address, addresses) if a.version == 6})
    changes = []
    for rtype, values in (("A", v4), ("AAAA", v6)):
        if values:
            changes.append(Change.replace(hostname, rtype, values, ttl=ttl))
        elif prune:
            changes.append(Change.delete(hostname, rtype))
    return changes


@dataclass
class ForwardSyncResult:
    hostname: str
    zone: str | None
    result: ApplyResult | None = None
    error: str | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and (self.result is None or self.result.ok)


async def sync_forward(
    provider: DnsProvider,
    hostname: str,
    addresses: Sequence[str],
    *,
    zone: str | None = None,
    ttl: int | None = None,
    prune: bool = True,
    confirmer: ForwardConfirmer | None = None,
) -> ForwardSyncResult:
    """Write the hostname's A/AAAA in ``zone`` (or the provider's zone that holds the name).

    Never raises for DNS trouble: the caller logs ``error`` and carries on with the deploy.
    """
    name = normalize_name(hostname)
    try:
        target = zone or zone_for_name(name, await provider.zone_names())
    except DnsError as exc:
        return ForwardSyncResult(name, zone, error=str(exc))
    if target is None:
        return ForwardSyncResult(name, None, error=f"no zone on {provider.LABEL} holds {name}")
    changes = forward_changes(name, addresses, ttl=ttl or provider.default_ttl, prune=prune)
    try:
        result = await provider.apply(target, changes)
    except DnsError as exc:
        return ForwardSyncResult(name, target, error=str(exc))
    if confirmer is not None and result.ok:
        written = [r for c in changes if c.action == "replace" for r in c.records]
        await confirmer.record_forward_write(name, written)
    return ForwardSyncResult(name, target, result, messages=list(result.messages))
