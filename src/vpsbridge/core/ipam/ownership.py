"""Does an address belong to a server? (the check before a client may set its PTR)

Servers carry single addresses and, for IPv6, often whole routed subnets (a /64 of which the client
uses any host). Addresses are compared parsed, never as text, because ``2001:db8::1`` and
``2001:0db8:0:0::0001`` are the same address; a subnet only ever contains addresses of its own family.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from vpsbridge.core.ipam.reverse_names import IpLike, parse_ip


def address_belongs(ip: IpLike, addresses: Iterable[str], subnets: Iterable[str] = ()) -> bool:
    """True when ``ip`` is one of ``addresses`` or inside one of ``subnets`` (``2001:db8:1::/64``).

    Malformed entries in the server data are skipped: they cannot grant anything.
    """
    try:
        wanted = parse_ip(ip)
    except ValueError:
        return False
    for value in addresses:
        try:
            if ipaddress.ip_address(str(value).strip()) == wanted:
                return True
        except ValueError:
            continue
    for value in subnets:
        try:
            network = ipaddress.ip_network(str(value).strip(), strict=False)
        except ValueError:
            continue
        if network.version == wanted.version and wanted in network:
            return True
    return False
