"""RFC 2317 classless reverse zones: parsing the three naming conventions seen in the field.

A provider delegates part of a /24 by CNAMEing each address of the range into a child zone whose first
label names the range. Operators write that label three ways, and all three reach us from real servers:

* CIDR prefix, ``0/26.2.0.192.in-addr.arpa.`` (the RFC's own example): start ``0``, prefix length 26;
* block size, ``64/64.2.0.192.in-addr.arpa.``: start ``64``, 64 addresses;
* dash, ``128-26.2.0.192.in-addr.arpa.``: the CIDR form for software that refuses ``/`` (HestiaCP).

The number after the separator is a prefix length when it lies in 24..32 and a block size otherwise,
so ``0/32`` is the single address ``.0`` rather than a block of 32 (the CIDR reading is the RFC's). A
range that is not aligned to its own size, or that runs past ``.255``, is not a delegation anyone can
make; it is reported as malformed rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from vpsbridge.core.ipam.reverse_names import labels, normalize_name

ClasslessStyle = Literal["cidr", "block", "dash"]

_RANGE_LABEL = re.compile(r"^(\d{1,3})([/-])(\d{1,3})$")


class ZoneNameError(ValueError):
    """A zone name that looks like a reverse zone but cannot be one (unaligned, out of range...)."""


@dataclass(frozen=True, slots=True)
class ClasslessZone:
    """A parsed RFC 2317 zone: which last-octet values of which /24 it serves."""

    name: str
    """The canonical zone name (lower case, trailing dot)."""
    parent: str
    """The /24 zone it is carved from, e.g. ``2.0.192.in-addr.arpa.``."""
    first: int
    last: int
    style: ClasslessStyle

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def covers(self, octet: int) -> bool:
        return self.first <= octet <= self.last

    def record_name(self, octet: int) -> str:
        """Owner name of the PTR for ``octet`` inside this zone (``10.0/26.2.0.192.in-addr.arpa.``)."""
        return f"{octet}.{self.name}"


def looks_classless(name: str) -> bool:
    """True when the first label is a range (``X/Y`` or ``X-Y``) under ``in-addr.arpa.``.

    Such names are either valid classless zones or mistakes worth a warning; forward zones never are.
    """
    parts = labels(name)
    return len(parts) >= 3 and parts[-2:] == ("in-addr", "arpa") and _RANGE_LABEL.match(parts[0]) is not None


def parse_classless_zone(name: str) -> ClasslessZone | None:
    """Parse ``name`` as an RFC 2317 zone.

    Returns ``None`` when the name is not classless-looking at all (an ordinary zone), and raises
    :class:`ZoneNameError` with a readable reason when it looks classless but is unusable.
    """
    if not looks_classless(name):
        return None
    canonical = normalize_name(name)
    parts = labels(canonical)
    match = _RANGE_LABEL.match(parts[0])
    assert match is not None  # guaranteed by looks_classless
    start, separator, second = int(match.group(1)), match.group(2), int(match.group(3))
    parent_octets = parts[1:-2]
    if len(parent_octets) != 3:
        raise ZoneNameError(
            f"{canonical}: a classless zone must sit directly under a /24 zone "
            f"(three octets before in-addr.arpa.), found {len(parent_octets)}"
        )
    for octet in parent_octets:
        if not octet.isdigit() or int(octet) > 255 or (len(octet) > 1 and octet.startswith("0")):
            raise ZoneNameError(f"{canonical}: {octet!r} is not an address octet")
    if start > 255:
        raise ZoneNameError(f"{canonical}: range start {start} is beyond 255")

    style: ClasslessStyle
    if 24 <= second <= 32:
        size = 1 << (32 - second)
        style = "dash" if separator == "-" else "cidr"
    else:
        size = second
        style = "dash" if separator == "-" else "block"
        if size <= 0 or size & (size - 1):
            raise ZoneNameError(
                f"{canonical}: {second} is neither a prefix length (24-32) nor a power-of-two block size"
            )
    if start % size:
        raise ZoneNameError(
            f"{canonical}: range {start}-{start + size - 1} is not aligned to its size {size}; "
            f"the delegation must start at a multiple of {size}"
        )
    last = start + size - 1
    if last > 255:
        raise ZoneNameError(f"{canonical}: range {start}-{last} runs past .255")
    return ClasslessZone(
        name=canonical,
        parent=".".join(parent_octets) + ".in-addr.arpa.",
        first=start,
        last=last,
        style=style,
    )
