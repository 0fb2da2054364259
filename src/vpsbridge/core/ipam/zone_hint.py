"""Which reverse zone(s) an operator must create for an address pool's prefix.

Reverse zones only exist on label boundaries: whole octets for IPv4, whole nibbles for IPv6. A pool
that is not on such a boundary needs either several zones (a /22 is four /24 zones) or, below a /24,
an RFC 2317 delegation from whoever holds the /24. Operators meet this exactly once per pool, so the
hint spells out the names to use rather than pointing at the RFC.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

_LIST_LIMIT = 8


@dataclass(frozen=True, slots=True)
class ReverseZoneAdvice:
    """What to create for a prefix.

    ``zones`` lists the ordinary zones that exactly cover the prefix (one for aligned prefixes);
    ``classless`` holds RFC 2317 zone names (CIDR and dash spellings) when the prefix is smaller than a /24.
    """

    prefix: str
    zones: tuple[str, ...]
    classless: tuple[str, ...]
    message: str


def _v4_zone(network: ipaddress.IPv4Network, octets: int) -> str:
    parts = str(network.network_address).split(".")[:octets]
    return ".".join(reversed(parts)) + (".in-addr.arpa." if parts else "in-addr.arpa.")


def _v6_zone(network: ipaddress.IPv6Network, nibbles: int) -> str:
    digits = network.network_address.exploded.replace(":", "")[:nibbles]
    return ".".join(reversed(digits)) + (".ip6.arpa." if digits else "ip6.arpa.")


def _listing(zones: list[str]) -> str:
    if len(zones) <= _LIST_LIMIT:
        return ", ".join(zones)
    return f"{zones[0]}, {zones[1]}, ... {zones[-1]}"


def reverse_zone_advice(prefix: str) -> ReverseZoneAdvice:
    """Structured advice for ``prefix`` (host bits are ignored: ``192.0.2.7/24`` means ``192.0.2.0/24``)."""
    network = ipaddress.ip_network(prefix.strip(), strict=False)
    text = str(network)
    if isinstance(network, ipaddress.IPv4Network):
        plen = network.prefixlen
        if plen > 24:
            start = int(network.network_address) & 0xFF
            parent = _v4_zone(network, 3)
            cidr = f"{start}/{plen}.{parent}"
            dash = f"{start}-{plen}.{parent}"
            last = start + network.num_addresses - 1
            message = (
                f"{text} is smaller than a /24, so it has no reverse zone of its own: its PTRs live in "
                f"{parent}, held by whoever holds the /24. Ask them for an RFC 2317 classless delegation "
                f"and create the zone {cidr} (or {dash} where '/' is not allowed); the parent then needs "
                f"NS records for that name and a CNAME for each address {start}..{last} pointing to "
                f"<n>.{cidr}"
            )
            return ReverseZoneAdvice(text, (), (cidr, dash), message)
        if plen % 8 == 0:
            zone = _v4_zone(network, plen // 8)
            return ReverseZoneAdvice(text, (zone,), (), zone)
        boundary = (plen // 8 + 1) * 8
        zones = [_v4_zone(sub, boundary // 8) for sub in network.subnets(new_prefix=boundary)]
    else:
        plen = network.prefixlen
        if plen % 4 == 0:
            zone = _v6_zone(network, plen // 4)
            return ReverseZoneAdvice(text, (zone,), (), zone)
        boundary = (plen // 4 + 1) * 4
        zones = [_v6_zone(sub, boundary // 4) for sub in network.subnets(new_prefix=boundary)]
    unit = "octet" if network.version == 4 else "nibble"
    message = (
        f"{text} is not on a{'n' if unit == 'octet' else ''} {unit} boundary, so no single reverse zone "
        f"matches it: create the {len(zones)} zones {_listing(zones)} (one per /{boundary})"
    )
    return ReverseZoneAdvice(text, tuple(zones), (), message)


def reverse_zone_hint(prefix: str) -> str:
    """The reverse zone to create for a pool's ``prefix``, or a sentence explaining what to do instead.

    Aligned prefixes give exactly one zone name (``2.0.192.in-addr.arpa.``); others give a message naming
    every zone needed or, below a /24, the RFC 2317 classless names to ask the upstream for.
    """
    advice = reverse_zone_advice(prefix)
    return advice.message
