"""The ``Platform`` interface every hypervisor driver implements.

Drivers map this interface onto one vendor API and nothing else: they never touch the database,
take their credentials as a dict and report through the shared HTTP layer (timeouts, retries,
redaction, the request log). Long operations return a :class:`TaskHandle` that workflows poll, so a
deploy survives worker restarts between "create" and "built".

Optional operations default to raising :class:`NotSupported`; a driver lists what it implements in
``SUPPORTS`` and :func:`vpsbridge.platforms.registry.register_driver` verifies that every declared
capability really has an implementation, so the portal never offers a button that cannot work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx2

from vpsbridge.http.errors import UpstreamUnavailable
from vpsbridge.http.record import Recorder
from vpsbridge.http.streams import ByteStream, open_tcp
from vpsbridge.platforms.errors import (
    InsufficientCapacity,
    InvalidRequest,
    NotSupported,
    PlatformError,
    ServerLocked,
    ServerMissing,
)
from vpsbridge.platforms.models import (
    Backup,
    Capability,
    CapacityReport,
    Check,
    ConnectionReport,
    ConsoleTicket,
    NodeCapacity,
    OsTemplate,
    PasswordReset,
    PowerAction,
    PowerState,
    ServerInfo,
    ServerRef,
    ServerSpec,
    TaskHandle,
    TaskState,
    TrafficReport,
)

__all__ = [
    "CAPABILITY_METHODS",
    "Backup",
    "Capability",
    "CapacityReport",
    "Check",
    "ConnectionReport",
    "ConsoleTicket",
    "InsufficientCapacity",
    "InvalidRequest",
    "NodeCapacity",
    "NotSupported",
    "OsTemplate",
    "PasswordReset",
    "Platform",
    "PlatformError",
    "PowerAction",
    "PowerState",
    "ServerInfo",
    "ServerLocked",
    "ServerMissing",
    "ServerRef",
    "ServerSpec",
    "TaskHandle",
    "TaskState",
    "TrafficReport",
]

#: The methods a driver must override to claim a capability.
CAPABILITY_METHODS: dict[Capability, tuple[str, ...]] = {
    Capability.CAPACITY: ("capacity",),
    Capability.CREATE: ("create_server",),
    Capability.BUILD: ("build",),
    Capability.POWER: ("power",),
    Capability.SUSPEND: ("suspend", "unsuspend"),
    Capability.TERMINATE: ("terminate",),
    Capability.CHANGE_PACKAGE: ("change_package",),
    Capability.RESET_PASSWORD: ("reset_password",),
    Capability.RENAME: ("rename",),
    Capability.LIVE_STATS: ("server_info",),
    Capability.TRAFFIC: ("traffic",),
    Capability.CONSOLE: ("console",),
    Capability.OS_TEMPLATES: ("os_templates",),
    Capability.BACKUPS: ("backups", "create_backup", "restore_backup"),
}


class Platform(ABC):
    """One configured platform (a VirtFusion panel, a Proxmox cluster) seen through its driver."""

    #: The registry type name (``virtfusion``, ``proxmox``, ``dummy``).
    type_name: ClassVar[str] = ""
    #: Capabilities this driver implements (values of :class:`Capability`).
    SUPPORTS: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        *,
        url: str,
        credentials: Mapping[str, Any],
        verify_tls: bool = True,
        ca_bundle: str | None = None,
        recorder: Recorder | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.credentials = dict(credentials)
        self.verify_tls = verify_tls
        self.ca_bundle = ca_bundle
        self.recorder = recorder
        self.transport = transport
        self.settings = dict(settings or {})
        self._setup()

    def _setup(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Build the driver's own clients from the stored fields; drivers override this, not ``__init__``,
        so the constructor signature (what the registry passes) lives in one place."""

    @property
    def verify(self) -> bool | str | Path:
        """The value for :class:`~vpsbridge.http.UpstreamClient`'s ``verify``: a CA bundle wins."""
        if self.ca_bundle:
            return self.ca_bundle
        return self.verify_tls

    def supports(self, capability: Capability | str) -> bool:
        return str(capability) in self.SUPPORTS

    def _unsupported(self, capability: Capability) -> NotSupported:
        return NotSupported(
            f"the {self.type_name or type(self).__name__} driver does not support {capability}"
        )

    async def aclose(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Release connections; drivers holding an HTTP client override this."""

    async def __aenter__(self) -> Platform:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- always available -------------------------------------------------------------------------

    @abstractmethod
    async def test_connection(self) -> ConnectionReport:
        """Check URL, TLS, credentials and each permission the integration needs, naming what is missing."""

    @abstractmethod
    async def server_info(self, server: ServerRef, *, live: bool = False) -> ServerInfo:
        """The server as the platform sees it; ``live`` asks for current power state and usage."""

    @abstractmethod
    async def task_status(self, task: TaskHandle) -> TaskHandle:
        """The current state of a task returned earlier (workflows poll this)."""

    # --- optional, declared in SUPPORTS -----------------------------------------------------------

    async def capacity(self, placement: Mapping[str, Any]) -> CapacityReport:
        raise self._unsupported(Capability.CAPACITY)

    async def create_server(self, spec: ServerSpec) -> TaskHandle:
        """Create (and, when ``spec.os_template`` is set, build) a server; ``task.server`` is its ref."""
        raise self._unsupported(Capability.CREATE)

    async def build(
        self,
        server: ServerRef,
        os_template: str,
        *,
        ssh_keys: Sequence[str] = (),
        hostname: str | None = None,
        password: str | None = None,
    ) -> TaskHandle:
        """(Re)install the operating system; destroys the disk contents."""
        raise self._unsupported(Capability.BUILD)

    async def power(self, server: ServerRef, action: PowerAction) -> TaskHandle:
        raise self._unsupported(Capability.POWER)

    async def suspend(self, server: ServerRef) -> TaskHandle:
        raise self._unsupported(Capability.SUSPEND)

    async def unsuspend(self, server: ServerRef) -> TaskHandle:
        raise self._unsupported(Capability.SUSPEND)

    async def terminate(self, server: ServerRef) -> TaskHandle:
        """Delete the server and free its resources; a server already gone raises ServerMissing."""
        raise self._unsupported(Capability.TERMINATE)

    async def change_package(self, server: ServerRef, spec: ServerSpec) -> TaskHandle:
        raise self._unsupported(Capability.CHANGE_PACKAGE)

    async def reset_password(self, server: ServerRef, password: str | None = None) -> PasswordReset:
        raise self._unsupported(Capability.RESET_PASSWORD)

    async def rename(self, server: ServerRef, hostname: str, *, name: str | None = None) -> None:
        raise self._unsupported(Capability.RENAME)

    async def traffic(self, server: ServerRef) -> TrafficReport:
        raise self._unsupported(Capability.TRAFFIC)

    async def console(self, server: ServerRef) -> ConsoleTicket:
        raise self._unsupported(Capability.CONSOLE)

    async def console_stream(self, ticket: ConsoleTicket) -> ByteStream:
        """Open the RFB byte stream a :meth:`console` ticket leads to (before any RFB handshake).

        The default handles a bare VNC server (``kind="vnc"`` with host and port); drivers whose
        consoles are websockets override it and open them through their upstream client.
        """
        if ticket.kind == "vnc" and ticket.host and ticket.port:
            try:
                return await open_tcp(ticket.host, int(ticket.port))
            except (OSError, TimeoutError) as exc:
                raise UpstreamUnavailable(
                    f"{self.type_name}: the console at {ticket.host}:{ticket.port} is not reachable: {exc}",
                    client=self.type_name,
                ) from exc
        raise self._unsupported(Capability.CONSOLE)

    async def os_templates(self, plan: Mapping[str, Any] | None = None) -> list[OsTemplate]:
        raise self._unsupported(Capability.OS_TEMPLATES)

    async def backups(self, server: ServerRef) -> list[Backup]:
        raise self._unsupported(Capability.BACKUPS)

    async def create_backup(self, server: ServerRef, *, note: str | None = None) -> TaskHandle:
        raise self._unsupported(Capability.BACKUPS)

    async def restore_backup(self, server: ServerRef, backup_id: str) -> TaskHandle:
        raise self._unsupported(Capability.BACKUPS)


def missing_capability_methods(cls: type[Platform]) -> list[str]:
    """Methods a driver class declares in ``SUPPORTS`` but does not override (empty = consistent)."""
    missing: list[str] = []
    for capability in cls.SUPPORTS:
        try:
            methods = CAPABILITY_METHODS[Capability(capability)]
        except ValueError:
            missing.append(f"unknown capability {capability!r}")
            continue
        for method in methods:
            if getattr(cls, method) is getattr(Platform, method) and capability != Capability.LIVE_STATS:
                missing.append(f"{capability}: {method}")
    return missing
