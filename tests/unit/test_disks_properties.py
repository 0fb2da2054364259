"""Property tests: the system disk is always a real data disk, sizes round-trip, formats are allowed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vpsbridge.core.disks import (
    BOOT_SCAN_ORDER,
    FILE_FORMATS,
    format_size,
    parse_drive,
    parse_size,
    system_disk,
    volume_format,
)

KEYS = st.sampled_from([*BOOT_SCAN_ORDER[:12], "scsi30", "virtio15", "efidisk0", "tpmstate0", "unused0"])
STORAGES = st.sampled_from(["local", "local-lvm", "ceph", "nfs-1"])


@st.composite
def drive_values(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["disk", "cdrom", "cloudinit", "none", "path"]))
    storage = draw(STORAGES)
    vmid = draw(st.integers(100, 999))
    if kind == "disk":
        return f"{storage}:vm-{vmid}-disk-{draw(st.integers(0, 5))},size={draw(st.integers(1, 500))}G"
    if kind == "cdrom":
        return f"{storage}:iso/x.iso,media=cdrom"
    if kind == "cloudinit":
        return f"{storage}:vm-{vmid}-cloudinit" + draw(st.sampled_from(["", ",media=cdrom"]))
    if kind == "none":
        return "none,media=cdrom"
    return "/dev/sdb"


@st.composite
def configs(draw: st.DrawFn) -> dict[str, str]:
    config = draw(st.dictionaries(KEYS, drive_values(), max_size=8))
    order = draw(st.lists(st.sampled_from([*BOOT_SCAN_ORDER[:12], "net0", "hostpci0"]), max_size=5))
    style = draw(st.sampled_from(["order", "legacy", "none", "empty"]))
    if style == "order":
        config["boot"] = "order=" + ";".join(order)
    elif style == "legacy":
        config["boot"] = "cdn"
        if order:
            config["bootdisk"] = order[0]
    elif style == "empty":
        config["boot"] = ""
    return config


@given(configs())
def test_system_disk_is_a_real_data_disk(config: dict[str, str]) -> None:
    key = system_disk(config)
    real = [k for k in BOOT_SCAN_ORDER if k in config and parse_drive(k, config[k]).is_data_disk]
    if key is None:
        assert real == []
    else:
        assert key in BOOT_SCAN_ORDER
        drive = parse_drive(key, config[key])
        assert drive.is_data_disk
        assert not drive.is_cdrom
        assert not drive.is_cloudinit


@given(configs())
def test_explicit_order_wins_over_scan(config: dict[str, str]) -> None:
    boot = config.get("boot", "")
    key = system_disk(config)
    if boot.startswith("order="):
        listed = [k for k in boot[6:].split(";") if k in config and parse_drive(k, config[k]).is_data_disk]
        if listed:
            assert key == listed[0]


@given(st.integers(min_value=0, max_value=2**50))
def test_size_round_trip(size: int) -> None:
    assert parse_size(format_size(size)) == size


@given(
    st.sampled_from(["local", "nfs", "ceph", "local-lvm"]),
    st.integers(100, 10**6),
    st.sampled_from(["raw", "qcow2", "vmdk", "subvol", None]),
    st.sampled_from([None, "dir", "nfs", "lvmthin", "rbd", "zfspool"]),
)
def test_volume_format_is_always_allowed(storage: str, vmid: int, ext: str | None, stype: str | None) -> None:
    volid = f"{storage}:{vmid}/vm-{vmid}-disk-0" + (f".{ext}" if ext else "")
    fmt = volume_format(volid, stype)
    assert fmt in FILE_FORMATS
    if stype in ("lvmthin", "rbd", "zfspool"):
        assert fmt == "raw"
    elif ext:
        assert fmt == ext
