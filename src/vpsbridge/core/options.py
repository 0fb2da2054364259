"""Product settings plus configurable options: what one server of a product gets.

Every resource has a default in the product's settings (``plan``), so a product works with no
configurable options at all; a configurable option whose name matches a resource overrides the
default. Names are the plain-English ones operators see in billing ("CPU Cores", "System Disk Read
IOPS" ...). Older products use short prefixes ("cpu", "ram", "disk2_riops" ...) as the part before
the ``|`` of a billing option name; they are accepted too, and when a plain name and a legacy prefix
both name the same resource the plain name wins, whatever order billing sends them in.

Pure: no I/O. :func:`resolve_resources` is the entry point; the result travels in job payloads as
``ResolvedResources.as_dict()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

#: Resource -> (plain-English option name, legacy short prefixes). The plain name is documented.
OPTION_NAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "cpu_cores": ("CPU Cores", ("cpu", "cores", "vcpu")),
    "memory_mb": ("RAM", ("ram", "mem", "memory")),
    "disk_gb": ("System Disk", ("disk", "hdd", "storage")),
    "additional_disk_gb": ("Additional Disk", ("disk2", "adisk", "extra_disk")),
    "disk_read_mbps": ("System Disk Read Bandwidth", ("disk_rbw", "rbw", "mbps_rd")),
    "disk_write_mbps": ("System Disk Write Bandwidth", ("disk_wbw", "wbw", "mbps_wr")),
    "disk_read_iops": ("System Disk Read IOPS", ("disk_riops", "riops", "iops_rd")),
    "disk_write_iops": ("System Disk Write IOPS", ("disk_wiops", "wiops", "iops_wr")),
    "additional_disk_read_mbps": ("Additional Disk Read Bandwidth", ("disk2_rbw", "adisk_rbw")),
    "additional_disk_write_mbps": ("Additional Disk Write Bandwidth", ("disk2_wbw", "adisk_wbw")),
    "additional_disk_read_iops": ("Additional Disk Read IOPS", ("disk2_riops", "adisk_riops")),
    "additional_disk_write_iops": ("Additional Disk Write IOPS", ("disk2_wiops", "adisk_wiops")),
    "bandwidth_mbps": ("Network Bandwidth", ("net", "netspeed", "rate", "port")),
    "ipv4": ("IPv4 Addresses", ("ipv4", "ip", "ips")),
    "ipv6": ("IPv6 Addresses", ("ipv6", "ip6")),
    "backups": ("Backups", ("backup", "bkp")),
    "snapshots": ("Snapshots", ("snapshot", "snap")),
    "os_template": ("Operating System", ("os", "template")),
}

#: Defaults when neither the product nor an option says anything.
BUILTIN_DEFAULTS: dict[str, Any] = {
    "cpu_cores": 1,
    "memory_mb": 1024,
    "disk_gb": 10,
    "additional_disk_gb": 0,
    "disk_read_mbps": 0,
    "disk_write_mbps": 0,
    "disk_read_iops": 0,
    "disk_write_iops": 0,
    "additional_disk_read_mbps": 0,
    "additional_disk_write_mbps": 0,
    "additional_disk_read_iops": 0,
    "additional_disk_write_iops": 0,
    "bandwidth_mbps": 0,
    "ipv4": 1,
    "ipv6": 0,
    "backups": 0,
    "snapshots": 0,
    "os_template": None,
}

#: Product-setting aliases accepted in ``plan`` (older products): alias -> resource.
PLAN_ALIASES: dict[str, str] = {"template": "os_template", "cores": "cpu_cores", "memory": "memory_mb"}

_FLOAT_RESOURCES = frozenset(
    {"disk_read_mbps", "disk_write_mbps", "additional_disk_read_mbps", "additional_disk_write_mbps"}
)
_UNIT_RE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]i?B?|[KMGT]|B)?\s*$", re.IGNORECASE)


class OptionError(ValueError):
    """An option or product setting cannot be used; the message names it and says why."""

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


def normalise_name(name: str) -> str:
    """Comparable form of an option name: the part before ``|``, case-folded, ``_``/``-`` as spaces."""
    bare = str(name).split("|", 1)[0]
    return " ".join(re.split(r"[\s_\-]+", bare.strip().casefold())).strip()


def option_value(raw: Any) -> str:
    """The value part of a billing ``value|Label`` string (``"4|4 GB"`` -> ``"4"``)."""
    return str(raw).strip().split("|", 1)[0].strip()


@dataclass(frozen=True)
class ResolvedResources:
    """What one server gets; ``sources`` says where each value came from (default, plan, option)."""

    cpu_cores: int
    memory_mb: int
    disk_gb: int
    additional_disk_gb: int = 0
    disk_read_mbps: float = 0
    disk_write_mbps: float = 0
    disk_read_iops: int = 0
    disk_write_iops: int = 0
    additional_disk_read_mbps: float = 0
    additional_disk_write_mbps: float = 0
    additional_disk_read_iops: int = 0
    additional_disk_write_iops: int = 0
    bandwidth_mbps: int = 0
    ipv4: int = 1
    ipv6: int = 0
    backups: int = 0
    snapshots: int = 0
    os_template: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResolvedResources:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def system_io(self) -> dict[str, float]:
        """The system disk's four I/O limits in the driver's terms (0 = unlimited)."""
        return {
            "mbps_rd": self.disk_read_mbps,
            "mbps_wr": self.disk_write_mbps,
            "iops_rd": self.disk_read_iops,
            "iops_wr": self.disk_write_iops,
        }

    def additional_io(self) -> dict[str, float]:
        return {
            "mbps_rd": self.additional_disk_read_mbps,
            "mbps_wr": self.additional_disk_write_mbps,
            "iops_rd": self.additional_disk_read_iops,
            "iops_wr": self.additional_disk_write_iops,
        }


def _lookup() -> tuple[dict[str, str], dict[str, str]]:
    plain = {normalise_name(names[0]): res for res, names in OPTION_NAMES.items()}
    legacy = {normalise_name(p): res for res, names in OPTION_NAMES.items() for p in names[1]}
    return plain, legacy


_PLAIN, _LEGACY = _lookup()


def match_option(name: str, extra_names: Mapping[str, str] | None = None) -> tuple[str, bool] | None:
    """``(resource, is_plain_name)`` for a billing option name, or ``None`` when it names nothing.

    ``extra_names`` (operator mapping: option name -> resource) counts as a plain name.
    """
    key = normalise_name(name)
    for alias, resource in (extra_names or {}).items():
        if normalise_name(alias) == key and resource in OPTION_NAMES:
            return resource, True
    if key in _PLAIN:
        return _PLAIN[key], True
    if key in _LEGACY:
        return _LEGACY[key], False
    return None


def parse_memory_mb(raw: Any, *, what: str = "RAM") -> int:
    """MB from ``"2048"``, ``"4 GB"``, ``"512M"``, ``"4|4 GB"``; a bare number below 1024 is GB.

    Billing products usually write RAM in GB ("4") and panels in MB ("4096"); nobody sells a VM with
    less than 1 GB written as MB, so the rule is unambiguous in practice.
    """
    text = option_value(raw)
    match = _UNIT_RE.match(text)
    if match is None:
        raise OptionError(f"{what}: {raw!r} is not a size (e.g. 2048, 4 GB, 512 MB)", option=what)
    number = float(match["num"])
    unit = (match["unit"] or "").upper().rstrip("B").rstrip("I")
    if unit == "":
        mb = number * 1024 if number < 1024 else number
    else:
        mb = number * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[unit]
    return round(mb)


def parse_gb(raw: Any, *, what: str) -> int:
    """GB from ``"40"``, ``"40 GB"``, ``"1 TB"``, ``"40|40 GB"``."""
    text = option_value(raw)
    match = _UNIT_RE.match(text)
    if match is None:
        raise OptionError(f"{what}: {raw!r} is not a size in GB (e.g. 40 or 40 GB)", option=what)
    number = float(match["num"])
    unit = (match["unit"] or "G").upper().rstrip("B").rstrip("I") or "G"
    gb = number * {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}[unit]
    return round(gb)


def _number(raw: Any, *, what: str, floating: bool) -> float | int:
    text = option_value(raw)
    match = re.match(r"^\s*(\d+(?:\.\d+)?)", text)
    if match is None:
        raise OptionError(f"{what}: {raw!r} is not a number", option=what)
    value = float(match[1])
    return value if floating else int(value)


def _convert(resource: str, raw: Any, what: str) -> Any:
    if resource == "os_template":
        value = option_value(raw)
        return value or None
    if resource == "memory_mb":
        return parse_memory_mb(raw, what=what)
    if resource in ("disk_gb", "additional_disk_gb"):
        return parse_gb(raw, what=what)
    if resource in ("backups", "snapshots"):
        text = option_value(raw).casefold()
        if text in ("yes", "on", "true", "enabled"):
            return 1
        if text in ("no", "off", "false", "disabled", ""):
            return 0
    return _number(raw, what=what, floating=resource in _FLOAT_RESOURCES)


def _blank(raw: Any) -> bool:
    return raw is None or option_value(raw) == ""


def resolve_resources(
    plan: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    *,
    option_names: Mapping[str, str] | None = None,
    ignored: Iterable[str] = (),
    strict: bool = True,
) -> ResolvedResources:
    """Product defaults (``plan``) overridden by matching configurable ``options``.

    ``option_names`` maps extra option names to resources (operator renames); ``ignored`` lists
    option names that are not ours (e.g. a "Location" option billing uses itself). With ``strict``
    any other unknown option is an :class:`OptionError` - a typo must never silently build a server
    of the wrong size.
    """
    values: dict[str, Any] = dict(BUILTIN_DEFAULTS)
    sources: dict[str, str] = dict.fromkeys(BUILTIN_DEFAULTS, "default")
    for key, raw in plan.items():
        resource = PLAN_ALIASES.get(key, key)
        if resource not in OPTION_NAMES or raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        if isinstance(raw, int | float) and not isinstance(raw, bool) and resource != "os_template":
            # Product settings are written in the field's own unit (memory_mb is MB, disk_gb GB).
            values[resource] = raw if resource in _FLOAT_RESOURCES else int(raw)
        else:
            values[resource] = _convert(resource, raw, f"product setting {key}")
        sources[resource] = "product"

    skip = {normalise_name(n) for n in ignored}
    chosen: dict[str, tuple[bool, str, Any]] = {}
    unknown: list[str] = []
    for name, raw in (options or {}).items():
        found = match_option(name, option_names)
        if found is None:
            if normalise_name(name) not in skip:
                unknown.append(str(name))
            continue
        resource, plain = found
        if _blank(raw):
            continue
        previous = chosen.get(resource)
        if previous is not None and (previous[0] or not plain):
            # The plain name wins; between two names of the same kind the first one stays.
            continue
        chosen[resource] = (plain, str(name), raw)
    if unknown and strict:
        known = ", ".join(names[0] for names in OPTION_NAMES.values())
        raise OptionError(
            f"unknown configurable option(s): {', '.join(sorted(unknown))}. Known options: {known} "
            "(or their short prefixes). Rename the option, map it in the product's option_names, or "
            "list it in the product's ignored_options.",
            option=sorted(unknown)[0],
        )
    for resource, (_plain, name, raw) in chosen.items():
        values[resource] = _convert(resource, raw, f"option {name!r}")
        sources[resource] = f"option {name}"

    for resource, value in values.items():
        if isinstance(value, int | float) and value < 0:
            raise OptionError(
                f"{OPTION_NAMES[resource][0]} cannot be negative (got {value})", option=resource
            )
    if values["cpu_cores"] < 1:
        raise OptionError("CPU Cores must be at least 1", option="cpu_cores")
    if values["memory_mb"] < 64:
        raise OptionError(f"RAM must be at least 64 MB (got {values['memory_mb']} MB)", option="memory_mb")
    if values["disk_gb"] < 1:
        raise OptionError("System Disk must be at least 1 GB", option="disk_gb")
    if values["os_template"] is not None:
        values["os_template"] = str(values["os_template"])
    return ResolvedResources(**values, sources=sources)


def shrink_warnings(
    current: ResolvedResources, wanted: ResolvedResources, *, confirm_detach: bool = False
) -> list[str]:
    """What a package change from ``current`` to ``wanted`` will not do, as sentences for the client.

    Disks are never shrunk (the upgrade page disables smaller choices and shows these); removing the
    additional disk destroys its data, so it happens only with an explicit confirmation.
    """
    out: list[str] = []
    if wanted.disk_gb < current.disk_gb:
        out.append(
            f"the system disk stays at {current.disk_gb} GB: disks are never shrunk "
            f"(the new package has {wanted.disk_gb} GB)"
        )
    if 0 < wanted.additional_disk_gb < current.additional_disk_gb:
        out.append(
            f"the additional disk stays at {current.additional_disk_gb} GB: disks are never shrunk "
            f"(the new package has {wanted.additional_disk_gb} GB)"
        )
    if wanted.additional_disk_gb == 0 < current.additional_disk_gb and not confirm_detach:
        out.append(
            "the additional disk is kept: removing it destroys its data and needs an explicit confirmation"
        )
    return out


def shrink_refusals(
    current: ResolvedResources, wanted: ResolvedResources, *, confirm_detach: bool = False
) -> list[str]:
    """Why a package change from ``current`` to ``wanted`` must be refused, one sentence per disk.

    The same rules as :func:`shrink_warnings`, for callers that refuse instead of queueing a change
    whose disk steps would only be skipped: a client who picked a smaller disk would otherwise pay
    for a package the server does not have. Each sentence names the disk, its size and the request.
    """
    out: list[str] = []
    if wanted.disk_gb < current.disk_gb:
        out.append(
            f"System Disk cannot shrink from {current.disk_gb} GB to {wanted.disk_gb} GB: "
            f"disks are never shrunk; choose {current.disk_gb} GB or more"
        )
    if 0 < wanted.additional_disk_gb < current.additional_disk_gb:
        out.append(
            f"Additional Disk cannot shrink from {current.additional_disk_gb} GB to "
            f"{wanted.additional_disk_gb} GB: disks are never shrunk; "
            f"choose {current.additional_disk_gb} GB or more"
        )
    if wanted.additional_disk_gb == 0 < current.additional_disk_gb and not confirm_detach:
        out.append(
            f"Additional Disk 0 would remove the {current.additional_disk_gb} GB additional disk and "
            "destroy its data: that needs an explicit confirmation"
        )
    return out


def disk_choice_allowed(current_gb: int, choice_gb: int) -> bool:
    """Whether an upgrade page may offer ``choice_gb`` for a disk that has ``current_gb`` now."""
    return choice_gb >= current_gb


def known_option_names() -> list[str]:
    """The documented (plain-English) option names, in documentation order."""
    return [names[0] for names in OPTION_NAMES.values()]


__all__ = [
    "BUILTIN_DEFAULTS",
    "OPTION_NAMES",
    "OptionError",
    "ResolvedResources",
    "disk_choice_allowed",
    "known_option_names",
    "match_option",
    "normalise_name",
    "option_value",
    "parse_gb",
    "parse_memory_mb",
    "resolve_resources",
    "shrink_refusals",
    "shrink_warnings",
]
