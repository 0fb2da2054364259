"""Reverse-DNS owner names for single addresses.

PowerDNS (and every other authoritative API we talk to) insists on canonical names: absolute, lower
case, with the trailing dot. Building them in one place, from parsed addresses rather than string
surgery, avoids the classic IPv6 bug of stripping colons from a compressed address.
"""

from __future__ import annotations

import ipaddress

IpLike = str | ipaddress.IPv4Address | ipaddress.IPv6Address

IPV4_REVERSE_SUFFIX = "in-addr.arpa."
IPV6_REVERSE_SUFFIX = "ip6.arpa."


def parse_ip(ip: IpLike) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Parse an address, accepting IPv4-mapped IPv6 as written (it is a distinct PTR name).

    Raises ``ValueError`` for anything that is not a single host address (a prefix is not an IP).
    """
    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return ip
    text = ip.strip()
    if "/" in text:
        raise ValueError(f"{ip!r} is a prefix, not a single address")
    if "%" in text:
        # A scope id (fe80::1%eth0) is local to one host and has no place in DNS.
        raise ValueError(f"{ip!r} carries a scope id; reverse DNS needs a plain address")
    return ipaddress.ip_address(text)


def ptr_name(ip: IpLike) -> str:
    """The PTR owner name of ``ip``: ``d.c.b.a.in-addr.arpa.`` or 32 nibbles under ``ip6.arpa.``.

    Always absolute with a trailing dot, because the PowerDNS API rejects anything else with 422
    ("not canonical"), and lower case, because that is how every server stores owner names.
    """
    address = parse_ip(ip)
    return address.reverse_pointer.lower() + "."


def normalize_name(name: str) -> str:
    """Canonical form of a DNS name for comparisons: lower case, absolute, no surrounding space."""
    text = name.strip().lower()
    if not text or text == ".":
        return "."
    return text if text.endswith(".") else text + "."


def labels(name: str) -> tuple[str, ...]:
    """Labels of a canonical name, without the empty root label (``"a.b."`` gives ``("a", "b")``)."""
    text = normalize_name(name)
    if text == ".":
        return ()
    return tuple(text[:-1].split("."))
