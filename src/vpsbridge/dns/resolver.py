"""Forward lookups (A/AAAA, following CNAMEs) for forward-confirmed reverse DNS.

A PTR should only claim a hostname whose A/AAAA records point back at the address; otherwise mail
servers and people reading logs are lied to. We resolve with dnspython against the nameservers the
operator configured (or the system's), follow at most five CNAMEs ourselves - an authoritative server
does not chase a CNAME out of its own zones - and report *why* a lookup gave nothing: NXDOMAIN and
"no address records" are answers, timeouts are not, and only answers may be cached as negatives.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from vpsbridge.core.ipam import normalize_name

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
LookupStatus = Literal["ok", "nxdomain", "nodata", "cname_loop", "error"]
MAX_CNAMES = 5


@dataclass(frozen=True)
class ForwardLookup:
    """What a hostname resolves to; ``status`` says whether an empty result is an answer or a failure."""

    hostname: str
    status: LookupStatus
    addresses: frozenset[Address] = frozenset()
    cnames: tuple[str, ...] = ()
    error: str | None = None

    @property
    def definite(self) -> bool:
        """True for answers (including "does not exist"); False when we could not find out."""
        return self.status != "error"

    def has(self, ip: str | Address) -> bool:
        return ipaddress.ip_address(str(ip)) in self.addresses


@dataclass
class ForwardResolver:
    """Resolves A and AAAA with CNAME following; ``nameservers=None`` uses the system configuration."""

    nameservers: Sequence[str] | None = None
    port: int = 53
    timeout: float = 3.0
    max_cnames: int = MAX_CNAMES
    _resolver: dns.asyncresolver.Resolver | None = field(default=None, repr=False)

    def resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            if self.nameservers:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = list(self.nameservers)
            else:
                resolver = dns.asyncresolver.Resolver()
            resolver.port = self.port
            resolver.lifetime = self.timeout
            resolver.timeout = min(self.timeout, 2.0)
            self._resolver = resolver
        return self._resolver

    async def _follow(self, hostname: str, rdtype: dns.rdatatype.RdataType) -> ForwardLookup:
        current = dns.name.from_text(hostname)
        cnames: list[str] = []
        seen = {current}
        while True:
            try:
                answer = await self.resolver().resolve(
                    current, rdtype, raise_on_no_answer=False, search=False
                )
            except dns.resolver.NXDOMAIN:
                return ForwardLookup(hostname, "nxdomain", cnames=tuple(cnames))
            except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.YXDOMAIN) as exc:
                return ForwardLookup(
                    hostname, "error", cnames=tuple(cnames), error=f"{type(exc).__name__}: {exc}"
                )
            except dns.exception.DNSException as exc:
                return ForwardLookup(
                    hostname, "error", cnames=tuple(cnames), error=f"{type(exc).__name__}: {exc}"
                )
            # Walk the answer section: CNAMEs the server chased itself, then the addresses (if any).
            name = current
            while True:
                addresses = answer.response.get_rrset(answer.response.answer, name, dns.rdataclass.IN, rdtype)
                if addresses is not None:
                    found = frozenset(ipaddress.ip_address(r.address) for r in addresses)
                    return ForwardLookup(hostname, "ok", found, tuple(cnames))
                alias = answer.response.get_rrset(
                    answer.response.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME
                )
                if alias is None:
                    break
                name = alias[0].target
                cnames.append(name.to_text())
                if len(cnames) > self.max_cnames or name in seen:
                    return ForwardLookup(
                        hostname,
                        "cname_loop",
                        cnames=tuple(cnames),
                        error=f"more than {self.max_cnames} CNAMEs or a CNAME loop",
                    )
                seen.add(name)
            if name == current:
                return ForwardLookup(hostname, "nodata", cnames=tuple(cnames))
            current = name  # the chain left the server's answer: ask for the target ourselves

    async def lookup(self, hostname: str) -> ForwardLookup:
        """A and AAAA of ``hostname`` merged; an error in either makes the whole lookup an error."""
        name = normalize_name(hostname)
        v4 = await self._follow(name, dns.rdatatype.A)
        v6 = await self._follow(name, dns.rdatatype.AAAA)
        for part in (v4, v6):
            if part.status in ("error", "cname_loop"):
                return ForwardLookup(name, part.status, cnames=part.cnames, error=part.error)
        addresses = v4.addresses | v6.addresses
        if addresses:
            return ForwardLookup(name, "ok", addresses, v4.cnames or v6.cnames)
        status: LookupStatus = "nxdomain" if v4.status == v6.status == "nxdomain" else "nodata"
        return ForwardLookup(name, status, cnames=v4.cnames or v6.cnames)

    async def resolves_to(self, hostname: str, ip: str | Address) -> bool:
        return (await self.lookup(hostname)).has(ip)
