"""IP address maths that the rest of the product relies on: reverse-DNS names and zone choice.

Pure functions only (no I/O); the stable names are re-exported here.
"""

from vpsbridge.core.ipam.classless import (
    ClasslessStyle,
    ClasslessZone,
    ZoneNameError,
    looks_classless,
    parse_classless_zone,
)
from vpsbridge.core.ipam.ownership import address_belongs
from vpsbridge.core.ipam.reverse_names import IpLike, labels, normalize_name, parse_ip, ptr_name
from vpsbridge.core.ipam.zone_hint import ReverseZoneAdvice, reverse_zone_advice, reverse_zone_hint
from vpsbridge.core.ipam.zone_match import (
    ZoneIndex,
    build_zone_index,
    find_zone,
    zone_for_name,
    zone_name_problems,
)

__all__ = [
    "ClasslessStyle",
    "ClasslessZone",
    "IpLike",
    "ReverseZoneAdvice",
    "ZoneIndex",
    "ZoneNameError",
    "address_belongs",
    "build_zone_index",
    "find_zone",
    "labels",
    "looks_classless",
    "normalize_name",
    "parse_classless_zone",
    "parse_ip",
    "ptr_name",
    "reverse_zone_advice",
    "reverse_zone_hint",
    "zone_for_name",
    "zone_name_problems",
]
