"""Parameter tables of the endpoints the simulator implements, and PVE-9-style strict checking.

Proxmox rejects unknown parameters, wrong types, values outside enums and patterns with HTTP 400
``Parameter verification failed.`` and a per-parameter ``errors`` map. The tables below are the
simulator's own (it must run without the official schema file); names, types, enums and patterns
follow the PVE 9 API schema, and a contract test compares them with it whenever the file is present.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NODE = r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?"
_STORAGE = r"[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]"
_BOOL_VALUES = {"0", "1", "true", "false", "yes", "no", "on", "off"}


@dataclass(frozen=True)
class P:
    """One parameter: its type and the checks Proxmox applies to it."""

    type: str = "string"
    optional: bool = True
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None


def req(type_: str = "string", **kw: object) -> P:
    return P(type=type_, optional=False, **kw)  # type: ignore[arg-type]


VMID = P(type="integer", optional=False, format="pve-vmid", minimum=100, maximum=999999999)
NODE = P(optional=False, format="pve-node")
BOOL = P(type="boolean")
STORAGE_ID = P(format="pve-storage-id")
DIGEST = P(max_length=64)

_PATH = {"node": NODE}
_VM = {"node": NODE, "vmid": VMID}
_LOG_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "nolog")

#: Keys of ``POST/PUT .../config`` apart from the indexed drive/net families below.
CONFIG_KEYS: dict[str, P] = {
    "acpi": BOOL,
    "agent": P(),
    "balloon": P(type="integer", minimum=0),
    "bios": P(enum=("seabios", "ovmf")),
    "boot": P(format="pve-qm-boot"),
    "bootdisk": P(pattern=r"(ide|sata|scsi|virtio)\d+"),
    "cipassword": P(),
    "citype": P(enum=("configdrive2", "nocloud", "opennebula")),
    "ciupgrade": BOOL,
    "ciuser": P(),
    "cores": P(type="integer", minimum=1),
    "cpu": P(),
    "cpulimit": P(type="number", minimum=0, maximum=128),
    "cpuunits": P(type="integer", minimum=1, maximum=262144),
    "description": P(max_length=8192),
    "hotplug": P(),
    "memory": P(),
    "name": P(format="dns-name"),
    "nameserver": P(format="address-list"),
    "numa": BOOL,
    "onboot": BOOL,
    "ostype": P(
        enum=(
            "other",
            "wxp",
            "w2k",
            "w2k3",
            "w2k8",
            "wvista",
            "win7",
            "win8",
            "win10",
            "win11",
            "l24",
            "l26",
            "solaris",
        )
    ),
    "protection": BOOL,
    "scsihw": P(enum=("lsi", "lsi53c810", "virtio-scsi-pci", "virtio-scsi-single", "megasas", "pvscsi")),
    "searchdomain": P(),
    "smbios1": P(max_length=512),
    "sockets": P(type="integer", minimum=1),
    "sshkeys": P(format="urlencoded"),
    "tags": P(format="pve-tag-list"),
    "template": BOOL,
    "vcpus": P(type="integer", minimum=1),
    "vga": P(),
    "vmgenid": P(),
}
#: Indexed families: regex of the key -> its parameter spec.
CONFIG_FAMILIES: dict[str, P] = {
    r"ide[0-3]": P(),
    r"sata[0-5]": P(),
    r"scsi([0-9]|[12][0-9]|30)": P(),
    r"virtio([0-9]|1[0-5])": P(),
    r"net[0-9]+": P(),
    r"ipconfig[0-9]+": P(format="pve-qm-ipconfig"),
    r"unused[0-9]+": P(),
    r"efidisk0": P(),
    r"tpmstate0": P(),
}
_CONFIG_WRITE = {
    "delete": P(format="pve-configid-list"),
    "digest": DIGEST,
    "revert": P(format="pve-configid-list"),
    "skiplock": BOOL,
    "force": BOOL,
}

_FIREWALL_OPTIONS = {
    "delete": P(format="pve-configid-list"),
    "dhcp": BOOL,
    "digest": DIGEST,
    "enable": BOOL,
    "ipfilter": BOOL,
    "log_level_in": P(enum=_LOG_LEVELS),
    "log_level_out": P(enum=_LOG_LEVELS),
    "macfilter": BOOL,
    "ndp": BOOL,
    "policy_in": P(enum=("ACCEPT", "REJECT", "DROP")),
    "policy_out": P(enum=("ACCEPT", "REJECT", "DROP")),
    "radv": BOOL,
}
_IPSET_NAME = P(optional=False, pattern=r"[A-Za-z][A-Za-z0-9\-\_]+")
_DISKS = tuple(f"ide{i}" for i in range(4)) + tuple(f"scsi{i}" for i in range(31))
_DISKS += tuple(f"virtio{i}" for i in range(16)) + tuple(f"sata{i}" for i in range(6))
_DISKS += ("efidisk0", "tpmstate0")
#: ``move_disk`` also moves (and reassigns) detached ``unusedN`` volumes.
_MOVABLE = _DISKS + tuple(f"unused{i}" for i in range(256))

#: ``"METHOD /path/template"`` -> parameters (path parameters included, as in the API schema).
ENDPOINTS: dict[str, dict[str, P]] = {
    "GET /version": {},
    "POST /access/ticket": {
        "username": req(max_length=64),
        "password": req(),
        "realm": P(format="pve-realm", max_length=32),
        "otp": P(),
        "path": P(max_length=64),
        "privs": P(format="pve-priv-list", max_length=64),
        "new-format": BOOL,
        "tfa-challenge": P(),
    },
    "GET /access/permissions": {"path": P(), "userid": P()},
    "GET /cluster/nextid": {"vmid": P(type="integer", format="pve-vmid", minimum=100, maximum=999999999)},
    "GET /cluster/resources": {"type": P(enum=("vm", "storage", "node", "sdn"))},
    "GET /nodes": {},
    "GET /nodes/{node}/status": dict(_PATH),
    "GET /nodes/{node}/storage": {
        **_PATH,
        "content": P(format="pve-storage-content-list"),
        "enabled": BOOL,
        "format": BOOL,
        "storage": STORAGE_ID,
        "target": P(format="pve-node"),
    },
    "GET /nodes/{node}/qemu": {**_PATH, "full": BOOL},
    "GET /nodes/{node}/qemu/{vmid}/config": {**_VM, "current": BOOL, "snapshot": P(format="pve-configid")},
    "GET /nodes/{node}/qemu/{vmid}/pending": dict(_VM),
    "POST /nodes/{node}/qemu/{vmid}/config": {
        **_VM,
        **_CONFIG_WRITE,
        "background_delay": P(type="integer", minimum=1, maximum=30),
    },
    "PUT /nodes/{node}/qemu/{vmid}/config": {**_VM, **_CONFIG_WRITE},
    "POST /nodes/{node}/qemu/{vmid}/clone": {
        **_VM,
        "newid": VMID,
        "bwlimit": P(type="integer", minimum=0),
        "description": P(),
        "format": P(enum=("raw", "qcow2", "vmdk")),
        "full": BOOL,
        "name": P(format="dns-name"),
        "pool": P(format="pve-poolid"),
        "snapname": P(format="pve-configid"),
        "storage": STORAGE_ID,
        "target": P(format="pve-node"),
    },
    "POST /nodes/{node}/qemu/{vmid}/migrate": {
        **_VM,
        "target": P(optional=False, format="pve-node"),
        "bwlimit": P(type="integer", minimum=0),
        "force": BOOL,
        "migration_network": P(format="CIDR"),
        "migration_type": P(enum=("secure", "insecure")),
        "online": BOOL,
        "targetstorage": P(format="storage-pair-list"),
        "with-conntrack-state": BOOL,
        "with-local-disks": BOOL,
    },
    "POST /nodes/{node}/qemu/{vmid}/move_disk": {
        **_VM,
        "disk": P(optional=False, enum=_MOVABLE),
        "bwlimit": P(type="integer", minimum=0),
        "delete": BOOL,
        "digest": P(max_length=40),
        "format": P(enum=("raw", "qcow2", "vmdk")),
        "storage": STORAGE_ID,
        "target-digest": P(max_length=40),
        "target-disk": P(enum=_MOVABLE),
        "target-vmid": P(type="integer", format="pve-vmid", minimum=100, maximum=999999999),
    },
    "PUT /nodes/{node}/qemu/{vmid}/resize": {
        **_VM,
        "disk": P(optional=False, enum=_DISKS),
        "size": P(optional=False, pattern=r"\+?\d+(\.\d+)?[KMGT]?"),
        "digest": DIGEST,
        "skiplock": BOOL,
    },
    "GET /nodes/{node}/qemu/{vmid}/status/current": dict(_VM),
    "POST /nodes/{node}/qemu/{vmid}/status/start": {
        **_VM,
        "skiplock": BOOL,
        "timeout": P(type="integer", minimum=0, maximum=86400),
        "machine": P(),
        "migratedfrom": P(format="pve-node"),
        "migration_network": P(format="CIDR"),
        "migration_type": P(enum=("secure", "insecure")),
        "stateuri": P(max_length=128),
        "targetstorage": P(format="storage-pair-list"),
        "force-cpu": P(),
        "nets-host-mtu": P(),
        "with-conntrack-state": BOOL,
    },
    "POST /nodes/{node}/qemu/{vmid}/status/stop": {
        **_VM,
        "keepActive": BOOL,
        "migratedfrom": P(format="pve-node"),
        "overrule-shutdown": BOOL,
        "skiplock": BOOL,
        "timeout": P(type="integer", minimum=0),
    },
    "POST /nodes/{node}/qemu/{vmid}/status/shutdown": {
        **_VM,
        "forceStop": BOOL,
        "keepActive": BOOL,
        "skiplock": BOOL,
        "timeout": P(type="integer", minimum=0),
    },
    "POST /nodes/{node}/qemu/{vmid}/status/reboot": {**_VM, "timeout": P(type="integer", minimum=0)},
    "POST /nodes/{node}/qemu/{vmid}/status/reset": {**_VM, "skiplock": BOOL},
    "DELETE /nodes/{node}/qemu/{vmid}": {
        **_VM,
        "destroy-unreferenced-disks": BOOL,
        "purge": BOOL,
        "skiplock": BOOL,
    },
    "GET /nodes/{node}/qemu/{vmid}/firewall/options": dict(_VM),
    "PUT /nodes/{node}/qemu/{vmid}/firewall/options": {**_VM, **_FIREWALL_OPTIONS},
    "GET /nodes/{node}/qemu/{vmid}/firewall/ipset": dict(_VM),
    "POST /nodes/{node}/qemu/{vmid}/firewall/ipset": {
        **_VM,
        "name": _IPSET_NAME,
        "comment": P(),
        "digest": DIGEST,
        "rename": P(pattern=r"[A-Za-z][A-Za-z0-9\-\_]+"),
    },
    "GET /nodes/{node}/qemu/{vmid}/firewall/ipset/{name}": {**_VM, "name": _IPSET_NAME},
    "POST /nodes/{node}/qemu/{vmid}/firewall/ipset/{name}": {
        **_VM,
        "name": _IPSET_NAME,
        "cidr": P(optional=False, format="IPorCIDRorAlias"),
        "comment": P(),
        "nomatch": BOOL,
    },
    "DELETE /nodes/{node}/qemu/{vmid}/firewall/ipset/{name}": {**_VM, "name": _IPSET_NAME, "force": BOOL},
    "DELETE /nodes/{node}/qemu/{vmid}/firewall/ipset/{name}/{cidr}": {
        **_VM,
        "name": _IPSET_NAME,
        "cidr": P(optional=False, format="IPorCIDRorAlias"),
        "digest": DIGEST,
    },
    "GET /nodes/{node}/qemu/{vmid}/rrddata": {
        **_VM,
        "timeframe": P(optional=False, enum=("hour", "day", "week", "month", "year")),
        "cf": P(enum=("AVERAGE", "MAX")),
    },
    "POST /nodes/{node}/qemu/{vmid}/vncproxy": {**_VM, "websocket": BOOL, "generate-password": BOOL},
    "POST /nodes/{node}/qemu/{vmid}/termproxy": {
        **_VM,
        "serial": P(enum=("serial0", "serial1", "serial2", "serial3")),
    },
    "GET /nodes/{node}/tasks/{upid}/status": {**_PATH, "upid": req()},
    "GET /nodes/{node}/tasks/{upid}/log": {
        **_PATH,
        "upid": req(),
        "start": P(type="integer", minimum=0),
        "limit": P(type="integer", minimum=0),
        "download": BOOL,
    },
}

_NODE_RE = re.compile(rf"^{_NODE}$")
_STORAGE_RE = re.compile(rf"^{_STORAGE}$")
_URLENCODED_RE = re.compile(r"^[-%a-zA-Z0-9_.!~*'()]*$")
_CONFIGID_RE = re.compile(r"^[a-z][a-z_\-]*\d*$")
_DNS_NAME_RE = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)(\.([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?))*$"
)
_TAG_RE = re.compile(r"^[a-z0-9_][a-z0-9_\-+.]*$", re.IGNORECASE)
_INTEGER_RE = re.compile(r"^[+-]?\d+$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _check_ipconfig(value: str) -> str | None:
    for part in value.split(","):
        key, _, val = part.partition("=")
        if key not in ("ip", "gw", "ip6", "gw6"):
            return f"invalid format - format error\n{key}: property is not defined in schema"
        try:
            if key in ("ip", "ip6") and val not in ("dhcp", "auto", "manual"):
                ipaddress.ip_interface(val)
            elif key in ("gw", "gw6"):
                ipaddress.ip_address(val)
        except ValueError:
            return f"invalid format - format error\n{key}: value '{val}' does not look like an IP address"
    return None


def _check_format(fmt: str, value: str) -> str | None:
    """An error text for a value violating a named Proxmox format, or ``None``."""
    if fmt in ("pve-node",) and not _NODE_RE.match(value):
        return f"value '{value}' does not look like a valid node name"
    if fmt == "pve-storage-id" and not _STORAGE_RE.match(value):
        return f"storage ID '{value}' contains illegal characters"
    if fmt == "urlencoded" and not _URLENCODED_RE.match(value):
        return f"invalid format - invalid urlencoded string: {value}"
    if fmt == "pve-configid-list":
        for item in re.split(r"[,;\s]+", value.strip()):
            if item and not _CONFIGID_RE.match(item):
                return f"invalid format - invalid configuration ID '{item}'"
    if fmt == "dns-name" and not _DNS_NAME_RE.match(value):
        return f"invalid format - value does not look like a valid DNS name: {value}"
    if fmt == "pve-tag-list":
        for tag in re.split(r"[;, ]+", value.strip()):
            if tag and not _TAG_RE.match(tag):
                return f"invalid format - invalid tag '{tag}'"
    if fmt == "address-list":
        for item in re.split(r"[,;\s]+", value.strip()):
            try:
                if item:
                    ipaddress.ip_address(item)
            except ValueError:
                return f"invalid format - value does not look like a valid address: {item}"
    if fmt == "pve-qm-ipconfig":
        return _check_ipconfig(value)
    if fmt == "IPorCIDRorAlias":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            if not re.match(r"^(dc/|guest/)?[A-Za-z][A-Za-z0-9\-_]+$", value):
                return (
                    f"invalid format - value does not look like a valid IP address or CIDR network: {value}"
                )
    if fmt == "storage-pair-list":
        for pair in re.split(r"[,;\s]+", value.strip()):
            parts = pair.split(":")
            if pair and (len(parts) > 2 or not all(_STORAGE_RE.match(p) or p == "1" for p in parts)):
                return f"invalid format - invalid storage pair '{pair}'"
    return None


def check_value(spec: P, value: str) -> str | None:
    """The error Proxmox would report for ``value`` under ``spec`` (``None`` when valid)."""
    if spec.type == "boolean":
        return (
            None if value.lower() in _BOOL_VALUES else "type check ('boolean') failed - got '" + value + "'"
        )
    if spec.type == "integer":
        if not _INTEGER_RE.match(value):
            return f"type check ('integer') failed - got '{value}'"
        number: float = int(value)
    elif spec.type == "number":
        if not _NUMBER_RE.match(value):
            return f"type check ('number') failed - got '{value}'"
        number = float(value)
    else:
        number = 0
    if spec.type in ("integer", "number"):
        if spec.minimum is not None and number < spec.minimum:
            return f"value must have a minimum value of {spec.minimum:g}"
        if spec.maximum is not None and number > spec.maximum:
            return f"value must have a maximum value of {spec.maximum:g}"
        if spec.format == "pve-vmid" and not 100 <= number <= 999999999:
            return "invalid format - value does not look like a valid VM ID"
        return None
    if spec.max_length is not None and len(value) > spec.max_length:
        return f"value may only be {spec.max_length} characters long"
    if spec.enum and value not in spec.enum:
        return f"value '{value}' does not have a value in the enumeration '{', '.join(spec.enum)}'"
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        return "value does not match the regex pattern"
    if spec.format:
        return _check_format(spec.format, value)
    return None


Tables = dict[str, dict[str, P]]


def spec_for(endpoint: str, name: str, tables: Tables | None = None) -> P | None:
    """The spec of ``name`` for an endpoint, including the VM config keys of config writes.

    With ``tables`` (derived from the official schema) those win; indexed names such as ``net[n]``
    match ``net0``, ``net1`` ...
    """
    if tables is not None and endpoint in tables:
        table = tables[endpoint]
        if name in table:
            return table[name]
        for key, spec in table.items():
            if key.endswith("[n]") and re.fullmatch(re.escape(key[:-3]) + r"\d+", name):
                return spec
        return None
    table = ENDPOINTS.get(endpoint, {})
    if name in table:
        return table[name]
    if endpoint.endswith("/qemu/{vmid}/config") and endpoint.split(" ")[0] in ("POST", "PUT"):
        if name in CONFIG_KEYS:
            return CONFIG_KEYS[name]
        for pattern, spec in CONFIG_FAMILIES.items():
            if re.fullmatch(pattern, name):
                return spec
    return None


def validate(endpoint: str, params: Mapping[str, str], tables: Tables | None = None) -> dict[str, str]:
    """Per-parameter errors for a request (empty when valid), as Proxmox reports them."""
    errors: dict[str, str] = {}
    table = tables.get(endpoint) if tables is not None and endpoint in tables else ENDPOINTS.get(endpoint)
    if table is None:
        return errors
    for name, value in params.items():
        spec = spec_for(endpoint, name, tables)
        if spec is None:
            errors[name] = (
                "property is not defined in schema and the schema does not allow additional properties"
            )
            continue
        problem = check_value(spec, value)
        if problem:
            errors[name] = problem
    for name, spec in table.items():
        if not spec.optional and not name.endswith("[n]") and name not in params:
            errors[name] = "property is missing and it is not optional"
    return errors


def _perl_pattern(pattern: str) -> str | None:
    converted = pattern.replace("(?^:", "(?:").replace("(?^i:", "(?i:")
    try:
        re.compile(converted)
    except re.error:
        return None
    return converted


def _from_schema(spec: Mapping[str, Any]) -> P:
    fmt = spec.get("format")
    return P(
        type=str(spec.get("type", "string")),
        optional=bool(spec.get("optional")),
        enum=tuple(str(e) for e in spec.get("enum", ())),
        pattern=_perl_pattern(str(spec["pattern"])) if "pattern" in spec else None,
        format=fmt if isinstance(fmt, str) else None,
        minimum=float(spec["minimum"]) if "minimum" in spec else None,
        maximum=float(spec["maximum"]) if "maximum" in spec else None,
        max_length=int(spec["maxLength"]) if "maxLength" in spec else None,
    )


def tables_from_schema(path: str | Path) -> Tables:
    """Parameter tables for the implemented endpoints, derived from Proxmox's API schema file.

    The file is the ``apidoc.js`` tree as JSON (``path``, ``info``, ``children``). Endpoints missing
    from it keep the simulator's own table.
    """
    flat: dict[str, Mapping[str, Any]] = {}

    def walk(node: Mapping[str, Any]) -> None:
        for method, info in (node.get("info") or {}).items():
            flat[f"{method} {node['path']}"] = info
        for child in node.get("children") or []:
            walk(child)

    for root in json.loads(Path(path).read_text(encoding="utf-8")):
        walk(root)
    tables: Tables = {}
    for endpoint in ENDPOINTS:
        info = flat.get(endpoint)
        if info is None:
            continue
        props = (info.get("parameters") or {}).get("properties") or {}
        tables[endpoint] = {name: _from_schema(spec) for name, spec in props.items()}
    return tables
