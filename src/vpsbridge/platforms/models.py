"""Inputs and outputs of platform drivers: plain, frozen, JSON-serialisable pydantic models.

They are the vocabulary shared by workflows, services, the API (FastAPI documents them as they are)
and every driver, so a VirtFusion server and a Proxmox VM look the same above the driver line.
Vendor-specific leftovers go into ``extra`` (inputs) or ``raw`` (outputs), never into new top-level
fields that only one platform understands.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Capability(StrEnum):
    """What a driver can do; the portal shows only features in the driver's ``SUPPORTS``."""

    CAPACITY = "capacity"
    CREATE = "create"
    BUILD = "build"
    POWER = "power"
    SUSPEND = "suspend"
    TERMINATE = "terminate"
    CHANGE_PACKAGE = "change_package"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a capability name, not a password
    RENAME = "rename"
    LIVE_STATS = "live_stats"
    TRAFFIC = "traffic"
    CONSOLE = "console"
    OS_TEMPLATES = "os_templates"
    BACKUPS = "backups"


PowerAction = Literal["start", "stop", "shutdown", "restart", "reset"]
PowerState = Literal["running", "stopped", "building", "suspended", "terminating", "unknown"]
TaskState = Literal["pending", "running", "succeeded", "failed"]


class ServerRef(_Frozen):
    """How a driver finds a server: the platform's own id (VirtFusion id, Proxmox vmid) and its node."""

    external_id: str
    node: str | None = None


class ServerSpec(_Frozen):
    """What to create (or change to). Sizes are in MB/GB as operators write them in plans."""

    hostname: str
    name: str | None = None
    cpu_cores: int = Field(ge=1)
    memory_mb: int = Field(ge=64)
    disk_gb: int = Field(ge=1)
    #: Monthly traffic allowance in GB; ``None`` = unmetered.
    traffic_gb: int | None = None
    #: Network speed cap in Mbit/s; ``None`` = platform default.
    bandwidth_mbps: int | None = None
    ipv4: int = Field(default=1, ge=0)
    ipv6: int = Field(default=0, ge=0)
    #: Where to place it: node, node group, hypervisor group ... (driver-specific keys).
    placement: dict[str, Any] = Field(default_factory=dict)
    os_template: str | None = None
    ssh_keys: tuple[str, ...] = ()
    #: The billing client, for platforms that keep their own users (VirtFusion).
    owner: str | None = None
    #: Vendor-specific plan settings (a VirtFusion package id, a Proxmox storage name ...).
    extra: dict[str, Any] = Field(default_factory=dict)


class TaskHandle(_Frozen):
    """A long operation the workflow polls with :meth:`Platform.task_status` until it is finished."""

    id: str
    kind: str
    state: TaskState = "pending"
    server: ServerRef | None = None
    progress: int | None = Field(default=None, ge=0, le=100)
    error: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


class ServerInfo(_Frozen):
    ref: ServerRef
    hostname: str | None = None
    name: str | None = None
    state: PowerState = "unknown"
    suspended: bool = False
    cpu_cores: int | None = None
    memory_mb: int | None = None
    disk_gb: int | None = None
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    os_template: str | None = None
    #: What the guest reports about itself (guest agent), when the platform knows it.
    os_name: str | None = None
    kernel: str | None = None
    #: Where it runs, as the platform names it (a location group, a node), and whether that host is
    #: in maintenance.
    location: str | None = None
    maintenance: bool = False
    #: ``True`` when the platform was asked for live values (state, stats) rather than its cache.
    live: bool = False
    #: Live usage when asked for it: cpu_pct, memory_used_mb, disk_used_gb, uptime_s ...
    stats: dict[str, float] = Field(default_factory=dict)
    raw: dict[str, Any] = Field(default_factory=dict)


class NodeCapacity(_Frozen):
    name: str
    enabled: bool = True
    cpu_cores: int
    cpu_cores_free: int
    memory_mb: int
    memory_mb_free: int
    disk_gb: int
    disk_gb_free: int
    servers: int = 0
    max_servers: int | None = None


class CapacityReport(_Frozen):
    """Free resources per node for a placement; the stock calculation (in ``core``) consumes it."""

    placement: dict[str, Any] = Field(default_factory=dict)
    nodes: tuple[NodeCapacity, ...] = ()


class OsTemplate(_Frozen):
    id: str
    name: str
    family: str | None = None
    version: str | None = None
    #: Templates that cannot take SSH keys or a generated password say so here.
    features: tuple[str, ...] = ()


class TrafficMonth(_Frozen):
    """One accounting period of a server's traffic (a calendar month, or the platform's own period)."""

    period_start: dt.datetime
    period_end: dt.datetime
    rx_bytes: int = Field(default=0, ge=0)
    tx_bytes: int = Field(default=0, ge=0)

    @property
    def total_bytes(self) -> int:
        return self.rx_bytes + self.tx_bytes


class TrafficReport(_Frozen):
    """The current period's traffic (top-level fields, what usage and billing read) and its history.

    ``months`` holds the periods the platform knows, newest first and at most
    :data:`TRAFFIC_HISTORY_MONTHS`, the current one included as the first entry; a platform that
    knows nothing about the past leaves it with just the current period. Periods before the server
    existed are not listed.
    """

    ref: ServerRef
    period_start: dt.datetime
    period_end: dt.datetime
    rx_bytes: int = 0
    tx_bytes: int = 0
    limit_bytes: int | None = None
    months: tuple[TrafficMonth, ...] = ()
    #: ``True`` when the figures are estimates (Proxmox: integrated RRD averages), not accounting.
    estimated: bool = False

    @property
    def total_bytes(self) -> int:
        return self.rx_bytes + self.tx_bytes

    @property
    def history(self) -> tuple[TrafficMonth, ...]:
        """``months``, or the current period alone when the driver gave no history."""
        if self.months:
            return self.months
        return (
            TrafficMonth(
                period_start=self.period_start,
                period_end=self.period_end,
                rx_bytes=max(0, self.rx_bytes),
                tx_bytes=max(0, self.tx_bytes),
            ),
        )


#: How many months of traffic history drivers report (and the portal charts).
TRAFFIC_HISTORY_MONTHS = 12


class ConsoleTicket(_Frozen):
    """A short-lived way in; never a reusable credential (the relay keeps any password server-side).

    ``url`` is the platform's console websocket (``novnc``) or ``host``/``port`` a bare VNC server
    (``vnc``); ``password`` is what the RFB stream asks for (VirtFusion's VNC password, Proxmox's
    vncticket). The portal relays the stream and answers that challenge itself, so neither the
    URL's token nor the password reaches a browser.
    """

    kind: Literal["novnc", "vnc", "xterm", "url"]
    url: str | None = None
    host: str | None = None
    port: int | None = None
    ticket: str | None = None
    password: str | None = Field(default=None, repr=False)
    expires_at: dt.datetime


class Backup(_Frozen):
    id: str
    created_at: dt.datetime
    size_bytes: int | None = None
    note: str | None = None


class PasswordReset(_Frozen):
    username: str
    password: str
    task: TaskHandle | None = None


class Check(_Frozen):
    """One line of a connection test: what was checked, whether it passed, and what to fix."""

    name: str
    ok: bool
    detail: str = ""
    #: The name of the API permission/scope the credentials lack, when that is the problem.
    missing_scope: str | None = None


class ConnectionReport(_Frozen):
    ok: bool
    version: str | None = None
    checks: tuple[Check, ...] = ()

    @classmethod
    def from_checks(
        cls, checks: list[Check] | tuple[Check, ...], version: str | None = None
    ) -> ConnectionReport:
        return cls(ok=all(c.ok for c in checks), version=version, checks=tuple(checks))

    @property
    def missing_scopes(self) -> list[str]:
        return [c.missing_scope for c in self.checks if c.missing_scope]
