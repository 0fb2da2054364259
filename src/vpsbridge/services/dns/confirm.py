"""Forward confirmation (FCrDNS) wired to the application: the shared cache and the authoritative data.

A hostname in a forward zone that vpsbridge itself manages is confirmed by asking that zone's provider
(the authority) instead of a recursive resolver, which may still cache yesterday's answer or not see
an internal zone at all. Any other hostname is resolved through DNS (``dns_resolvers``, or the
system's). Either way the answer goes through :class:`~vpsbridge.dns.ptr.ForwardConfirmer`, which
caches positives for ``dns_fcrdns_positive_ttl`` and negatives for the much shorter
``dns_fcrdns_negative_ttl`` in ``ctx.cache`` - shared by every process when Redis is configured.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from vpsbridge.core.ipam import normalize_name
from vpsbridge.dns.errors import DnsError
from vpsbridge.dns.ptr import ForwardConfirmer
from vpsbridge.dns.resolver import MAX_CNAMES, Address, ForwardLookup, ForwardResolver
from vpsbridge.services.dns.catalog import ProviderPool, ZoneMap

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

CACHE_PREFIX = "dns:fcrdns:"


class AuthoritativeResolver(ForwardResolver):
    """Reads A/AAAA (and CNAMEs, at most five) from our own providers for names in managed zones."""

    def __init__(self, zone_map: ZoneMap, pool: ProviderPool, **resolver_options: object) -> None:
        super().__init__(**resolver_options)  # type: ignore[arg-type]
        self.zone_map = zone_map
        self.pool = pool

    async def _authoritative(self, name: str) -> ForwardLookup | None:
        """The provider's answer, or ``None`` when ``name`` is in no managed zone."""
        current = normalize_name(name)
        cnames: list[str] = []
        while True:
            zone = self.zone_map.zone_of_name(current)
            if zone is None:
                if not cnames:
                    return None
                # The alias leaves our zones: let DNS answer for the target, keep the chain.
                rest = await super().lookup(current)
                return ForwardLookup(name, rest.status, rest.addresses, (*cnames, *rest.cnames), rest.error)
            try:
                provider = await self.pool.get(self.zone_map.provider_of[zone])
                found = await provider.get_rrsets(
                    zone, [(current, "A"), (current, "AAAA"), (current, "CNAME")]
                )
            except DnsError as exc:
                return ForwardLookup(name, "error", cnames=tuple(cnames), error=str(exc))
            addresses: set[Address] = set()
            for rtype in ("A", "AAAA"):
                rrset = found.get((current, rtype))
                if rrset is not None:
                    addresses.update(ipaddress.ip_address(r) for r in rrset.records)
            if addresses:
                return ForwardLookup(name, "ok", frozenset(addresses), tuple(cnames))
            alias = found.get((current, "CNAME"))
            if alias is None or not alias.records:
                return ForwardLookup(name, "nodata", cnames=tuple(cnames))
            current = normalize_name(alias.records[0])
            cnames.append(current)
            if len(cnames) > min(self.max_cnames, MAX_CNAMES) or current in cnames[:-1]:
                return ForwardLookup(name, "cname_loop", cnames=tuple(cnames), error="too many CNAMEs")

    async def lookup(self, hostname: str) -> ForwardLookup:
        answer = await self._authoritative(hostname)
        if answer is not None:
            return answer
        return await super().lookup(hostname)


def build_confirmer(ctx: AppContext, zone_map: ZoneMap, pool: ProviderPool) -> ForwardConfirmer:
    settings = ctx.settings
    resolver = AuthoritativeResolver(
        zone_map,
        pool,
        nameservers=list(settings.dns_resolvers) or None,
        port=settings.dns_resolver_port,
        timeout=settings.dns_resolver_timeout,
    )
    return ForwardConfirmer(
        resolver,
        ctx.cache,
        positive_ttl=settings.dns_fcrdns_positive_ttl,
        negative_ttl=settings.dns_fcrdns_negative_ttl,
        key_prefix=CACHE_PREFIX,
    )
