"""The Proxmox VE platform driver (API token auth, tasks, clone/migrate/config steps for workflows)."""

from vpsbridge.platforms.proxmox.client import ProxmoxClient, decode_sshkeys, encode_sshkeys
from vpsbridge.platforms.proxmox.driver import (
    MARKER_TAG,
    REQUIRED_PRIVILEGES,
    ProxmoxPlatform,
    read_marker,
    wait_unlocked,
)
from vpsbridge.platforms.proxmox.errors import NotOwned, TaskFailed, TaskTimeout, VmidTaken
from vpsbridge.platforms.proxmox.upid import Upid, exit_ok, parse_upid
from vpsbridge.platforms.registry import register_driver

register_driver("proxmox", ProxmoxPlatform)

__all__ = [
    "MARKER_TAG",
    "REQUIRED_PRIVILEGES",
    "NotOwned",
    "ProxmoxClient",
    "ProxmoxPlatform",
    "TaskFailed",
    "TaskTimeout",
    "Upid",
    "VmidTaken",
    "decode_sshkeys",
    "encode_sshkeys",
    "exit_ok",
    "parse_upid",
    "read_marker",
    "wait_unlocked",
]
