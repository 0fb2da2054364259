"""Configurable options (what a client picked at order time) mapped onto VirtFusion API fields.

WHMCS hands the module ``{"Memory": "4|4 GB", "Location|Datacentre": "2|Frankfurt", ...}``: option
names may carry a display part after ``|`` and values are ``value|Label`` pairs. Which option feeds
which API field is configurable (an operator's option is called "RAM" rather than "Memory"), so the
mapping is data: :data:`DEFAULT_OPTION_NAMES` overridden per platform or product with
``option_names``. Values are parsed from the part before ``|`` (PHP's ``(int)"3|London"`` is 3 and
products rely on that). Memory follows the established rule: a number below 1024 means GB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: API field (or vpsbridge key) -> the configurable option name that sets it.
DEFAULT_OPTION_NAMES: dict[str, str] = {
    "ipv4": "IPv4",
    "packageId": "Package",
    "hypervisorId": "Location",
    "storage": "Storage",
    "memory": "Memory",
    "traffic": "Bandwidth",
    "networkSpeedInbound": "Inbound Network Speed",
    "networkSpeedOutbound": "Outbound Network Speed",
    "cpuCores": "CPU Cores",
    "networkProfile": "Network Type",
    "storageProfile": "Storage Type",
    "firewallRulesets": "Firewall Rulesets",
    "additionalStorage1Capacity": "Additional Storage",
    "additionalStorage1Profile": "Additional Storage Type",
    "additionalStorage2Capacity": "Additional Storage 2",
    "additionalStorage2Profile": "Additional Storage 2 Type",
}

#: Fields whose value is an integer in the API (everything except the rulesets list).
INTEGER_FIELDS = frozenset(DEFAULT_OPTION_NAMES) - {"firewallRulesets"}
#: What a package change re-applies through ``/modify/*`` after ``PUT /package``.
MODIFY_FIELDS = ("memory", "cpuCores", "traffic")


class OptionError(ValueError):
    """A configurable option value that cannot be read as what its API field needs."""


def option_value(raw: Any) -> str:
    """The value part of a WHMCS ``value|Label`` string (``"4|4 GB"`` -> ``"4"``), stripped."""
    text = str(raw).strip()
    return text.split("|", 1)[0].strip()


def option_name(raw: str) -> str:
    """The name part of a WHMCS option name (``"Location|Datacentre"`` -> ``"Location"``)."""
    return raw.split("|", 1)[0].strip()


def parse_int(raw: Any, field_name: str) -> int:
    value = option_value(raw)
    try:
        return int(float(value)) if "." in value else int(value)
    except ValueError:
        raise OptionError(f"option for {field_name} must be a number, got {raw!r}") from None


def memory_mb(value: int) -> int:
    """Memory options below 1024 are GB (``4`` -> 4096 MB); 1024 and above are already MB."""
    return value * 1024 if 0 < value < 1024 else value


@dataclass(frozen=True)
class MappedOptions:
    """The result of mapping: API fields for ``POST /servers`` and the options nobody claimed."""

    fields: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)

    def modify_values(self) -> dict[str, int]:
        """The memory / cpuCores / traffic values to re-apply after a package change."""
        return {k: int(v) for k, v in self.fields.items() if k in MODIFY_FIELDS}


def resolve_names(overrides: Mapping[str, str] | None) -> dict[str, str]:
    """The effective field -> option-name map (an empty override name disables that field)."""
    names = dict(DEFAULT_OPTION_NAMES)
    for key, value in (overrides or {}).items():
        if key not in DEFAULT_OPTION_NAMES:
            raise OptionError(
                f"unknown option field {key!r}; known: {', '.join(sorted(DEFAULT_OPTION_NAMES))}"
            )
        names[key] = str(value)
    return names


def map_options(options: Mapping[str, Any], names: Mapping[str, str] | None = None) -> MappedOptions:
    """Map configurable options onto API fields.

    ``options`` maps option names (possibly ``"Name|Display"``) to values (possibly ``"v|Label"``);
    matching is case-insensitive on the name part. Empty values are skipped (an option the client
    did not set). ``additionalStorageN`` fields switch on their ``...Enable`` flag when a capacity
    above 0 is given.
    """
    by_name = {option_name(k).casefold(): (k, v) for k, v in options.items()}
    claimed: set[str] = set()
    fields: dict[str, Any] = {}
    for api_field, configured in resolve_names(names).items():
        if not configured:
            continue
        found = by_name.get(option_name(configured).casefold())
        if found is None:
            continue
        key, raw = found
        claimed.add(key)
        if raw is None or option_value(raw) == "":
            continue
        if api_field == "firewallRulesets":
            parts = [p for p in option_value(raw).replace(";", ",").split(",") if p.strip()]
            fields[api_field] = [parse_int(p, api_field) for p in parts]
            continue
        number = parse_int(raw, api_field)
        if number < 0 and api_field != "networkProfile":
            raise OptionError(f"option {key!r} for {api_field} cannot be negative")
        fields[api_field] = memory_mb(number) if api_field == "memory" else number
    for n in (1, 2):
        if fields.get(f"additionalStorage{n}Capacity", 0) > 0:
            fields[f"additionalStorage{n}Enable"] = True
    unknown = {k: str(v) for k, v in options.items() if k not in claimed}
    return MappedOptions(fields=fields, unknown=unknown)
