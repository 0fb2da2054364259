"""Proxmox VE disk helpers: drive strings, sizes, volume ids and the system-disk rule.

Pure functions over a VM config dict (as ``GET .../config`` returns it), shared by the Proxmox driver,
its simulator and the deploy / change-package workflows. They follow what Proxmox itself does
(``qemu-server`` ``Drive.pm`` and ``pve-storage`` ``parse_volname``) because a provisioner that guesses
differently resizes the wrong disk: templates with a CD-ROM on ``ide2``, a cloud-init drive, an EFI
disk or a network entry first in the boot order are common.

Stable public API: :func:`system_disk` and :func:`volume_format`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Bus -> number of drive slots (``$MAX_*_DISKS`` in Drive.pm).
DRIVE_BUSES: dict[str, int] = {"ide": 4, "scsi": 31, "virtio": 16, "sata": 6}
#: Drive keys in the order Proxmox scans them when no boot disk is configured.
BOOT_SCAN_ORDER: tuple[str, ...] = tuple(
    f"{bus}{i}" for bus in ("ide", "scsi", "virtio", "sata") for i in range(DRIVE_BUSES[bus])
)
#: Every key that holds a drive (``valid_drive_names``), including the special EFI/TPM disks.
DRIVE_KEYS: frozenset[str] = frozenset((*BOOT_SCAN_ORDER, "efidisk0", "tpmstate0"))
#: Formats a disk image may have on a file-based storage (``pve-storage`` volname suffixes).
FILE_FORMATS: frozenset[str] = frozenset({"raw", "qcow2", "vmdk", "subvol"})
#: Storage types whose volumes are block devices (always ``raw``, no file extension).
BLOCK_STORAGE_TYPES: frozenset[str] = frozenset(
    {"lvm", "lvmthin", "zfspool", "zfs", "rbd", "iscsi", "iscsidirect", "drbd"}
)
#: Drive options that carry I/O limits (re-sent in full whenever one of them changes).
IO_LIMIT_KEYS: tuple[str, ...] = ("mbps_rd", "mbps_wr", "iops_rd", "iops_wr")

_STORAGE_ID = r"[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]"
_VOLID_RE = re.compile(rf"^(?P<storage>{_STORAGE_ID}):(?P<volname>.+)$")
_CLOUDINIT_RE = re.compile(r"[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow|qcow2|qed|vmdk|cloop))?$")
_OWNER_RE = re.compile(r"^(?:vm|base|subvol|basevol)-(?P<vmid>\d+)-")
_SIZE_RE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>[KMGT](?:iB)?)?$")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


# --- sizes ---------------------------------------------------------------------------------------


def parse_size(text: str | int) -> int:
    """Bytes from a Proxmox size (``32G``, ``104858K``, ``1.5T``, ``4GiB``, bare bytes).

    Raises :class:`ValueError` for anything Proxmox's ``parse_size`` would reject.
    """
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"negative size: {text}")
        return text
    match = _SIZE_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a disk size: {text!r}")
    unit = (match["unit"] or "")[:1]
    return int(float(match["num"]) * _UNITS[unit])


def format_size(size_bytes: int) -> str:
    """The largest exact unit, as Proxmox prints sizes (``32G``, ``104858K``, bytes if not KiB-aligned)."""
    if size_bytes < 0:
        raise ValueError(f"negative size: {size_bytes}")
    for unit in ("T", "G", "M", "K"):
        factor = _UNITS[unit]
        if size_bytes and size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return str(size_bytes)


def gib(size_gb: int | float) -> int:
    """Bytes in ``size_gb`` GiB (plans speak GB; Proxmox's ``G`` is GiB)."""
    return int(size_gb * 1024**3)


# --- property strings and drives --------------------------------------------------------------------


def parse_property_string(value: str, default_key: str | None = None) -> dict[str, str]:
    """``key=value,key=value`` into a dict; a leading bare value goes to ``default_key``.

    Proxmox property strings never quote commas inside values for the options we handle.
    """
    result: dict[str, str] = {}
    for index, part in enumerate(p for p in value.split(",") if p != ""):
        if "=" in part:
            key, _, val = part.partition("=")
            result[key.strip()] = val.strip()
        elif index == 0 and default_key is not None:
            result[default_key] = part.strip()
        else:
            raise ValueError(f"malformed property string {value!r}: {part!r} has no key")
    return result


def format_property_string(values: Mapping[str, Any], default_key: str | None = None) -> str:
    """Inverse of :func:`parse_property_string` (the default key first, written bare)."""
    parts: list[str] = []
    if default_key is not None and default_key in values:
        parts.append(str(values[default_key]))
    parts.extend(f"{k}={v}" for k, v in values.items() if k != default_key and v is not None)
    return ",".join(parts)


@dataclass
class Drive:
    """One parsed drive entry (``scsi0: local-lvm:vm-100-disk-0,iothread=1,size=32G``)."""

    key: str
    file: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def is_cdrom(self) -> bool:
        return self.options.get("media") == "cdrom" or self.file == "cdrom"

    @property
    def is_cloudinit(self) -> bool:
        return is_cloudinit_volume(self.file)

    @property
    def has_volume(self) -> bool:
        """A real volume: not ``none``/``cdrom`` and not a host path passed through."""
        return bool(self.file) and self.file not in ("none", "cdrom") and not self.file.startswith("/")

    @property
    def is_data_disk(self) -> bool:
        return self.has_volume and not self.is_cdrom and not self.is_cloudinit

    @property
    def size(self) -> int | None:
        """Size in bytes from the informational ``size=`` option, if present."""
        raw = self.options.get("size")
        return parse_size(raw) if raw else None

    @property
    def storage(self) -> str | None:
        parsed = parse_volid(self.file)
        return parsed[0] if parsed else None

    def io_limits(self) -> dict[str, float]:
        """The four I/O limits this drive has set (MB/s and IOPS), missing ones left out."""
        return {k: float(self.options[k]) for k in IO_LIMIT_KEYS if k in self.options}

    def with_options(self, **changes: Any) -> Drive:
        """A copy with options set (``None`` removes one); the drive string to send keeps the rest."""
        options = dict(self.options)
        for key, value in changes.items():
            if value is None:
                options.pop(key, None)
            else:
                options[key] = _option_text(value)
        return Drive(self.key, self.file, options)

    def value(self) -> str:
        """The drive string to send back to Proxmox (``file`` first, then options)."""
        return format_property_string({"file": self.file, **self.options}, default_key="file")


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def is_drive_key(key: str) -> bool:
    return key in DRIVE_KEYS


def parse_drive(key: str, value: str) -> Drive:
    """Parse a drive entry; ``volume=`` is accepted as the alias of ``file=`` as Proxmox does."""
    options = parse_property_string(value, default_key="file")
    file = options.pop("file", None) or options.pop("volume", None)
    if not file:
        raise ValueError(f"drive {key} has no volume: {value!r}")
    return Drive(key, file, options)


def iter_drives(config: Mapping[str, Any]) -> Iterator[Drive]:
    """Every parseable drive of a config, in Proxmox's scan order (then EFI/TPM)."""
    for key in (*BOOT_SCAN_ORDER, "efidisk0", "tpmstate0"):
        raw = config.get(key)
        if not isinstance(raw, str) or not raw:
            continue
        try:
            yield parse_drive(key, raw)
        except ValueError:
            continue


def is_cloudinit_volume(file: str) -> bool:
    return bool(_CLOUDINIT_RE.search(file))


def free_drive_key(config: Mapping[str, Any], bus: str = "scsi") -> str:
    """The first unused slot on ``bus`` (for attaching an additional disk)."""
    for index in range(DRIVE_BUSES[bus]):
        key = f"{bus}{index}"
        if key not in config:
            return key
    raise ValueError(f"no free {bus} slot left")


# --- the system disk ---------------------------------------------------------------------------------


def boot_candidates(config: Mapping[str, Any]) -> list[str]:
    """Drive keys Proxmox would try as boot disks, in order (``get_bootdisks``).

    ``boot: order=a;b`` lists drives (network and PCI entries dropped); the legacy form
    (``boot: cdn`` or ``legacy=``) or no ``boot`` at all defers to ``bootdisk``.
    """
    boot = config.get("boot")
    order: str | None = None
    if isinstance(boot, str) and boot.strip():
        try:
            props = parse_property_string(boot.strip(), default_key="legacy")
        except ValueError:
            props = {"legacy": boot}
        if "legacy" not in props:
            order = props.get("order", "")
    if order is None:
        bootdisk = config.get("bootdisk")
        return [bootdisk] if isinstance(bootdisk, str) and bootdisk in DRIVE_KEYS else []
    return [name for name in re.split(r"[,;\s]+", order) if name in DRIVE_KEYS]


def system_disk(config: Mapping[str, Any]) -> str | None:
    """The drive key of the VM's system disk (e.g. ``scsi0``), found the way Proxmox finds it.

    First the boot order (or legacy ``bootdisk``), skipping entries that are missing, unparseable,
    CD-ROMs, cloud-init drives or without a real volume; then, as Proxmox's default boot device
    selection does, the first real data disk on ide, scsi, virtio, sata. ``None`` if the VM has none.
    """
    for key in boot_candidates(config):
        if key in ("efidisk0", "tpmstate0"):
            continue
        raw = config.get(key)
        if not isinstance(raw, str) or not raw:
            continue
        try:
            drive = parse_drive(key, raw)
        except ValueError:
            continue
        if drive.is_data_disk:
            return key
    for drive in iter_drives(config):
        if drive.key in BOOT_SCAN_ORDER and drive.is_data_disk:
            return drive.key
    return None


def data_disks(config: Mapping[str, Any]) -> list[Drive]:
    """Every real data disk (no CD-ROM, cloud-init, EFI/TPM or pass-through), in scan order."""
    return [d for d in iter_drives(config) if d.key in BOOT_SCAN_ORDER and d.is_data_disk]


# --- volume ids ----------------------------------------------------------------------------------------


def parse_volid(volid: str) -> tuple[str, str] | None:
    """``(storage, volname)`` of a volume id, or ``None`` for paths, ``none`` and ``cdrom``."""
    match = _VOLID_RE.match(volid)
    if not match:
        return None
    return match["storage"], match["volname"]


def volume_owner(volid: str) -> int | None:
    """The VMID a volume belongs to (``vm-120-disk-0`` -> 120), if its name says so."""
    parsed = parse_volid(volid)
    if parsed is None:
        return None
    match = _OWNER_RE.match(parsed[1].rsplit("/", 1)[-1])
    return int(match["vmid"]) if match else None


def volume_format(volid: str, storage_type: str | None = None) -> str:
    """The image format of a volume: from its trailing extension, ``raw`` for block storages.

    On block storages (LVM, LVM-thin, ZFS, Ceph RBD, iSCSI) volumes are raw devices; the one
    exception Proxmox makes is a thick-LVM volume named ``*.qcow2`` (PVE 9 snapshot chains).
    On file storages the extension must be one of :data:`FILE_FORMATS`; a volume without one is
    raw. Anything else raises :class:`ValueError` rather than passing an unknown format on.
    """
    parsed = parse_volid(volid)
    if parsed is None:
        raise ValueError(f"not a storage volume id: {volid!r}")
    leaf = parsed[1].rsplit("/", 1)[-1]
    stype = (storage_type or "").lower()
    if stype in BLOCK_STORAGE_TYPES:
        return "qcow2" if stype == "lvm" and leaf.endswith(".qcow2") else "raw"
    if "." not in leaf:
        return "raw"
    extension = leaf.rsplit(".", 1)[1].lower()
    if extension not in FILE_FORMATS:
        raise ValueError(f"volume {volid!r} has an unsupported format {extension!r}")
    return extension
