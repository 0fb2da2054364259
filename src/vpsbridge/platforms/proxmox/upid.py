"""Proxmox task ids (UPIDs) and task exit statuses.

A UPID names the node that runs the task, so a task can be polled without remembering where it was
started: ``UPID:pve1:0000A1B2:0011C3D4:65A0F00D:qmclone:101:root@pam!vpsbridge:``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_UPID_RE = re.compile(
    r"^UPID:(?P<node>[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?):(?P<pid>[0-9A-Fa-f]{8}):"
    r"(?P<pstart>[0-9A-Fa-f]{8,9}):(?P<starttime>[0-9A-Fa-f]{8}):(?P<type>[^:\s]+):"
    r"(?P<id>[^:\s]*):(?P<user>[^:\s]+):$"
)
_WARNINGS_RE = re.compile(r"^WARNINGS: \d+$")


@dataclass(frozen=True, slots=True)
class Upid:
    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str
    text: str

    @property
    def started_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.starttime, dt.UTC)


def parse_upid(text: str) -> Upid:
    """Parse a UPID; raises :class:`ValueError` when ``text`` is not one."""
    match = _UPID_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a Proxmox task id: {text!r}")
    return Upid(
        node=match["node"],
        pid=int(match["pid"], 16),
        pstart=int(match["pstart"], 16),
        starttime=int(match["starttime"], 16),
        type=match["type"],
        id=match["id"],
        user=match["user"],
        text=text.strip(),
    )


def format_upid(
    node: str, pid: int, pstart: int, starttime: int, task_type: str, task_id: str, user: str
) -> str:
    return f"UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{task_type}:{task_id}:{user}:"


def is_upid(value: object) -> bool:
    return isinstance(value, str) and bool(_UPID_RE.match(value.strip()))


def exit_ok(exitstatus: str | None) -> bool:
    """``OK`` and ``WARNINGS: n`` are success (``PVE::Tools::upid_status_is_error``)."""
    if exitstatus is None:
        return False
    return exitstatus == "OK" or bool(_WARNINGS_RE.match(exitstatus))
