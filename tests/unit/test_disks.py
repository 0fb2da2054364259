"""System-disk detection, volume formats and drive strings, on configs as Proxmox writes them."""

from __future__ import annotations

import pytest

from vpsbridge.core.disks import (
    boot_candidates,
    data_disks,
    format_size,
    free_drive_key,
    parse_drive,
    parse_size,
    parse_volid,
    system_disk,
    volume_format,
    volume_owner,
)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # qemu-server test configs (src/test/cfg2cmd, parse-config-input)
        ({"boot": "order=scsi0", "scsi0": "nfs:120/vm-120-disk-0.qcow2,iothread=1,size=4G"}, "scsi0"),
        (
            {
                "boot": "order=virtio1;net0;scsi4;ide2",
                "virtio1": "local:vm-8006-disk-1,size=8G",
                "scsi4": "local:vm-8006-disk-4,size=8G",
                "ide2": "none,media=cdrom",
                "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
            },
            "virtio1",
        ),
        # legacy boot string defers to bootdisk
        (
            {"boot": "ndca", "bootdisk": "virtio1", "virtio1": "lvm:vm-1-disk-0", "scsi0": "lvm:vm-1-disk-1"},
            "virtio1",
        ),
        ({"boot": "legacy=cdn", "bootdisk": "sata2", "sata2": "lvm:vm-1-disk-0"}, "sata2"),
        # an empty boot value means "no order": fall back to the first real data disk
        ({"boot": "", "ide2": "local:iso/debian.iso,media=cdrom", "scsi1": "lvm:vm-1-disk-0"}, "scsi1"),
        ({"boot": "order=", "virtio0": "lvm:vm-1-disk-0"}, "virtio0"),
        # cdrom and network entries first in the order are skipped
        (
            {
                "boot": "order=ide2;net0;scsi0",
                "ide2": "local-lvm:vm-100-cloudinit,media=cdrom",
                "scsi0": "local-lvm:vm-100-disk-0,size=3G",
            },
            "scsi0",
        ),
        # a cloud-init drive that is not flagged as cdrom is still not a system disk
        ({"boot": "order=sata0;scsi0", "sata0": "ceph:vm-7-cloudinit", "scsi0": "ceph:vm-7-disk-0"}, "scsi0"),
        # boot order names a missing drive: the next candidate wins
        ({"boot": "order=scsi3;scsi0", "scsi0": "ceph:vm-7-disk-0"}, "scsi0"),
        # nothing bootable in the order: fallback scans ide, scsi, virtio, sata (EFI/TPM never)
        (
            {
                "boot": "order=net0",
                "efidisk0": "lvm:vm-1-disk-9,size=4M",
                "tpmstate0": "lvm:vm-1-disk-8,size=4M",
                "sata0": "lvm:vm-1-disk-2",
                "virtio3": "lvm:vm-1-disk-1",
            },
            "virtio3",
        ),
        ({"unused0": "rbd:vm-120-disk-0", "ide0": "/dev/sdb", "ide2": "cdrom,media=cdrom"}, None),
        ({}, None),
        ({"scsi0": "none,media=cdrom", "scsi1": "local:100/vm-100-disk-1.raw"}, "scsi1"),
    ],
)
def test_system_disk(config: dict[str, str], expected: str | None) -> None:
    assert system_disk(config) == expected


def test_boot_candidates_drop_non_drives() -> None:
    config = {"boot": "order=net0;hostpci0;usb0;scsi2;virtio0 ide1"}
    assert boot_candidates(config) == ["scsi2", "virtio0", "ide1"]
    assert boot_candidates({"bootdisk": "net0"}) == []


@pytest.mark.parametrize(
    ("volid", "storage_type", "expected"),
    [
        ("local:100/vm-100-disk-0.qcow2", None, "qcow2"),
        ("local:100/vm-100-disk-0.qcow2", "dir", "qcow2"),
        ("nfs:120/vm-120-disk-1.raw", "nfs", "raw"),
        ("nfs:120/vm-120-disk-1.vmdk", None, "vmdk"),
        ("local-lvm:vm-100-disk-0", "lvmthin", "raw"),
        ("local-lvm:vm-100-disk-0", None, "raw"),
        ("ceph:base-9000-disk-0/vm-100-disk-0", "rbd", "raw"),
        ("tank:vm-100-disk-0.qcow2", "zfspool", "raw"),
        ("thick:vm-100-disk-0.qcow2", "lvm", "qcow2"),
        ("thick:vm-100-disk-0", "lvm", "raw"),
        ("zfs:subvol-100-disk-0.subvol", None, "subvol"),
    ],
)
def test_volume_format(volid: str, storage_type: str | None, expected: str) -> None:
    assert volume_format(volid, storage_type) == expected


@pytest.mark.parametrize("volid", ["local:iso/debian.iso", "local:100/vm-100-disk-0.img", "/dev/sdb", "none"])
def test_volume_format_rejects_unknown(volid: str) -> None:
    with pytest.raises(ValueError, match=r"volume id|unsupported format"):
        volume_format(volid)


def test_parse_volid_and_owner() -> None:
    assert parse_volid("local-lvm:vm-100-disk-0") == ("local-lvm", "vm-100-disk-0")
    assert parse_volid("/dev/sdb") is None
    assert parse_volid("cdrom") is None
    assert volume_owner("local:120/vm-120-disk-0.qcow2") == 120
    assert volume_owner("ceph:base-9000-disk-0/vm-101-disk-0") == 101
    assert volume_owner("local:iso/debian.iso") is None


def test_parse_drive_and_round_trip() -> None:
    drive = parse_drive("scsi0", "local-lvm:vm-100-disk-0,iothread=1,size=32G,mbps_rd=100")
    assert drive.file == "local-lvm:vm-100-disk-0"
    assert drive.size == 32 * 1024**3
    assert drive.storage == "local-lvm"
    assert drive.io_limits() == {"mbps_rd": 100.0}
    changed = drive.with_options(mbps_rd=None, iops_wr=500, mbps_wr=50.0)
    assert changed.value() == "local-lvm:vm-100-disk-0,iothread=1,size=32G,iops_wr=500,mbps_wr=50"
    assert parse_drive("ide2", "file=local:vm-1-cloudinit,media=cdrom").is_cloudinit
    assert parse_drive("scsi1", "volume=ceph:vm-1-disk-1").file == "ceph:vm-1-disk-1"
    with pytest.raises(ValueError, match="no volume"):
        parse_drive("scsi0", "size=3G")


def test_sizes() -> None:
    assert parse_size("4G") == 4 * 1024**3
    assert parse_size("104858K") == 104858 * 1024
    assert parse_size("1.5T") == int(1.5 * 1024**4)
    assert parse_size("4GiB") == 4 * 1024**3
    assert parse_size("512") == 512
    assert format_size(32 * 1024**3) == "32G"
    assert format_size(104858 * 1024) == "104858K"
    assert format_size(1000) == "1000"
    for bad in ("", "4X", "-1G", "G"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)


def test_data_disks_and_free_slot() -> None:
    config = {
        "scsi0": "lvm:vm-1-disk-0,size=10G",
        "scsi1": "lvm:vm-1-disk-1,size=20G",
        "ide2": "lvm:vm-1-cloudinit,media=cdrom",
        "efidisk0": "lvm:vm-1-disk-2,size=4M",
    }
    assert [d.key for d in data_disks(config)] == ["scsi0", "scsi1"]
    assert free_drive_key(config) == "scsi2"
    assert free_drive_key(config, "virtio") == "virtio0"
