"""Typed Proxmox errors, placed on the shared tri-state so workflows can react to each one.

Proxmox reports most failures as HTTP 500 with a sentence in the reason phrase; the client turns the
sentences a workflow must act on into classes: a VMID that is already taken (retry with another id),
a locked VM (wait), a task that failed (a definite answer, with the end of its log) or one we stopped
waiting for (unknown: it may still finish).
"""

from __future__ import annotations

from vpsbridge.http.errors import UpstreamRejected, UpstreamUnavailable
from vpsbridge.platforms.errors import InvalidRequest, PlatformError


class VmidTaken(InvalidRequest):
    """The VMID already exists (a clone lost a ``/cluster/nextid`` race): pick another and retry."""


class TaskFailed(PlatformError, UpstreamRejected):
    """A Proxmox task ended with an error exit status (anything but ``OK`` / ``WARNINGS: n``)."""

    def __init__(self, message: str, *, upid: str, exitstatus: str, log_tail: tuple[str, ...] = ()) -> None:
        super().__init__(message, client="proxmox", status=None)
        self.upid = upid
        self.exitstatus = exitstatus
        self.log_tail = log_tail


class TaskTimeout(PlatformError, UpstreamUnavailable):
    """We stopped waiting for a task that is still running: its outcome is unknown."""

    def __init__(self, message: str, *, upid: str) -> None:
        super().__init__(message, client="proxmox")
        self.upid = upid


class NotOwned(PlatformError, UpstreamRejected):
    """The VM under this VMID does not carry our ownership marker; destructive actions are refused."""
