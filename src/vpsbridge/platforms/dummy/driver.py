"""The ``dummy`` platform driver: the full :class:`Platform` interface over :class:`DummyCloud`.

Used by the demo and by tests of everything above the driver line (workflows, stock, portal). It
follows the same contract as the real drivers, including errors: an unknown server raises
:class:`ServerMissing` (confirmed missing), a busy one :class:`ServerLocked` (unknown), a request
the platform refuses :class:`InvalidRequest`, and a token without a needed scope
:class:`UpstreamAuthError` naming that scope.

Credentials: ``{"token": "..."}`` and optionally ``{"scopes": [...]}``. Without ``scopes`` the
token has every permission; with it, each missing entry of :data:`REQUIRED_SCOPES` is reported by
``test_connection`` by name and refused by the operations that need it. The token ``"invalid"`` is
rejected outright. Settings: ``nodes`` (names or dicts with cpu_cores/memory_mb/disk_gb/max_servers)
and ``task_seconds`` (how long tasks take, default 2 s).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from vpsbridge.core.traffic import Window, add_months, calendar_months
from vpsbridge.http.errors import UpstreamAuthError
from vpsbridge.platforms.base import Platform
from vpsbridge.platforms.dummy.cloud import TEMPLATES, DummyCloud, DummyServer
from vpsbridge.platforms.errors import InvalidRequest
from vpsbridge.platforms.models import (
    TRAFFIC_HISTORY_MONTHS,
    Backup,
    Capability,
    CapacityReport,
    Check,
    ConnectionReport,
    ConsoleTicket,
    OsTemplate,
    PasswordReset,
    PowerAction,
    PowerState,
    ServerInfo,
    ServerRef,
    ServerSpec,
    TaskHandle,
    TrafficMonth,
    TrafficReport,
)

VERSION = "dummy 1.0"
#: A token value the dummy platform always rejects, to exercise authentication failures.
REJECTED_TOKEN = "invalid"  # noqa: S105 - a test value, not a credential

#: Permission each operation needs, as a real panel's API token scopes would be named.
REQUIRED_SCOPES: dict[str, str] = {
    "servers:read": "read servers and tasks",
    "servers:write": "create, change and delete servers",
    "nodes:read": "read node capacity for stock",
    "templates:read": "list OS templates",
    "console": "open consoles",
    "backups": "list and take backups",
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stable(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts``: the in-memory platform's history must not change per view."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _past_month(target: DummyServer, window: Window) -> tuple[int, int]:
    """(rx, tx) of an earlier month: 5-150 GB around the server's own level, for the days it existed."""
    share = window.clip(start=target.created_at).seconds / window.seconds if window.seconds else 0.0
    level = 5 + 145 * _stable("level", target.id)
    volume = level * (0.6 + 0.8 * _stable("month", target.id, window.start.date())) * 1024**3 * share
    sent = 0.2 + 0.6 * _stable("ratio", target.id)
    return int(volume * (1 - sent)), int(volume * sent)


class DummyPlatform(Platform):
    SUPPORTS = frozenset(str(c) for c in Capability)

    def _setup(self) -> None:
        self.cloud = DummyCloud.for_url(self.url, self.settings)

    # --- permission model ---------------------------------------------------------------------------

    def _token_ok(self) -> bool:
        token = self.credentials.get("token")
        return bool(token) and token != REJECTED_TOKEN

    def _granted(self) -> set[str]:
        scopes = self.credentials.get("scopes")
        return set(REQUIRED_SCOPES) if scopes is None else {str(s) for s in scopes}

    def _enter(self, operation: str, scope: str) -> None:
        if not self._token_ok():
            raise UpstreamAuthError("dummy: the API token was rejected", status=401)
        if scope not in self._granted():
            raise UpstreamAuthError(f"dummy: the API token lacks the {scope!r} scope", status=403)
        self.cloud.enter(operation)

    # --- always available -------------------------------------------------------------------------

    async def test_connection(self) -> ConnectionReport:
        self.cloud.enter("test_connection")
        checks = [
            Check(
                name="url",
                ok=self.url.startswith("dummy://"),
                detail="reachable"
                if self.url.startswith("dummy://")
                else "dummy platform URLs start with dummy://",
            )
        ]
        if not self._token_ok():
            checks.append(Check(name="authentication", ok=False, detail="the API token was rejected"))
            return ConnectionReport.from_checks(checks, VERSION)
        checks.append(Check(name="authentication", ok=True, detail="token accepted"))
        granted = self._granted()
        for scope, purpose in REQUIRED_SCOPES.items():
            if scope in granted:
                checks.append(Check(name=f"scope {scope}", ok=True, detail=purpose))
            else:
                checks.append(
                    Check(
                        name=f"scope {scope}",
                        ok=False,
                        detail=f"grant the token the {scope!r} scope (needed to {purpose})",
                        missing_scope=scope,
                    )
                )
        enabled = [n for n in self.cloud.nodes.values() if n.enabled]
        checks.append(Check(name="nodes", ok=bool(enabled), detail=f"{len(enabled)} node(s) enabled"))
        return ConnectionReport.from_checks(checks, VERSION)

    def _info(self, server: DummyServer, live: bool) -> ServerInfo:
        stats: dict[str, float] = {}
        if live and server.state == "running":
            age = (_utcnow() - server.created_at).total_seconds()
            stats = {
                "cpu_pct": round(5 + (server.id * 7 + age) % 40, 1),
                "memory_used_mb": round(server.memory_mb * 0.35, 1),
                "disk_used_gb": round(server.disk_gb * 0.2, 1),
                "uptime_s": round(age, 1),
            }
        return ServerInfo(
            ref=server.ref,
            hostname=server.hostname,
            name=server.name,
            state=server.state,
            suspended=server.suspended,
            cpu_cores=server.cpu_cores,
            memory_mb=server.memory_mb,
            disk_gb=server.disk_gb,
            ipv4=tuple(server.ipv4),
            ipv6=tuple(server.ipv6),
            os_template=server.os_template,
            location=server.node,
            live=live,
            stats=stats,
            raw={"id": server.id, "node": server.node, "owner": server.owner},
        )

    async def server_info(self, server: ServerRef, *, live: bool = False) -> ServerInfo:
        self._enter("server_info", "servers:read")
        return self._info(self.cloud.server(server), live)

    async def task_status(self, task: TaskHandle) -> TaskHandle:
        self._enter("task_status", "servers:read")
        return self.cloud.handle(self.cloud.task(task.id))

    # --- capacity and creation ----------------------------------------------------------------------

    async def capacity(self, placement: Mapping[str, Any]) -> CapacityReport:
        self._enter("capacity", "nodes:read")
        return self.cloud.capacity(placement)

    async def create_server(self, spec: ServerSpec) -> TaskHandle:
        self._enter("create_server", "servers:write")
        if spec.os_template:
            self.cloud.template(spec.os_template)
        server = self.cloud.new_server(spec)
        password = self.cloud.generate_password() if spec.os_template else None

        def done() -> dict[str, Any]:
            server.os_template = spec.os_template
            server.password = password
            server.state = "running" if spec.os_template else "stopped"
            return {"server_id": server.id}

        return self.cloud.start_task("create", server, done)

    async def build(
        self,
        server: ServerRef,
        os_template: str,
        *,
        ssh_keys: Sequence[str] = (),
        hostname: str | None = None,
        password: str | None = None,
    ) -> TaskHandle:
        self._enter("build", "servers:write")
        target = self.cloud.server(server, lock=True)
        template = self.cloud.template(os_template)
        if ssh_keys and "no_ssh_keys" in template.features:
            raise InvalidRequest(f"dummy: {template.name} cannot take SSH keys", status=422)
        if target.suspended:
            raise InvalidRequest(f"dummy: server {target.id} is suspended", status=422)
        new_password = password or self.cloud.generate_password()
        target.state = "building"

        def done() -> dict[str, Any]:
            target.os_template = template.id
            target.password = new_password
            if hostname:
                target.hostname = hostname
            target.state = "running"
            return {"os_template": template.id}

        return self.cloud.start_task("build", target, done)

    # --- power and lifecycle ------------------------------------------------------------------------

    async def power(self, server: ServerRef, action: PowerAction) -> TaskHandle:
        self._enter("power", "servers:write")
        target = self.cloud.server(server, lock=True)
        if target.suspended:
            raise InvalidRequest(
                f"dummy: server {target.id} is suspended; power actions are refused", status=422
            )
        if target.state == "building":
            raise InvalidRequest(f"dummy: server {target.id} has no operating system yet", status=422)
        new_state: PowerState = "stopped" if action in ("stop", "shutdown") else "running"

        def done() -> dict[str, Any]:
            target.state = new_state
            return {"action": action, "state": new_state}

        return self.cloud.start_task(f"power:{action}", target, done)

    async def suspend(self, server: ServerRef) -> TaskHandle:
        self._enter("suspend", "servers:write")
        target = self.cloud.server(server, lock=True)
        if target.suspended:
            return self.cloud.start_task("suspend", target, None)  # already suspended: idempotent
        resume: PowerState = "running" if target.state == "running" else "stopped"
        target.resume_state = resume

        def done() -> dict[str, Any]:
            target.suspended = True
            target.state = "suspended"
            return {}

        return self.cloud.start_task("suspend", target, done)

    async def unsuspend(self, server: ServerRef) -> TaskHandle:
        self._enter("unsuspend", "servers:write")
        target = self.cloud.server(server, lock=True)

        def done() -> dict[str, Any]:
            if target.suspended:
                target.suspended = False
                target.state = target.resume_state
            return {}

        return self.cloud.start_task("unsuspend", target, done)

    async def terminate(self, server: ServerRef) -> TaskHandle:
        self._enter("terminate", "servers:write")
        target = self.cloud.server(server)  # terminating overrides locks, as panels do
        target.state = "terminating"

        def done() -> dict[str, Any]:
            self.cloud.servers.pop(target.id, None)  # frees its capacity
            return {"server_id": target.id}

        return self.cloud.start_task("terminate", target, done)

    async def change_package(self, server: ServerRef, spec: ServerSpec) -> TaskHandle:
        self._enter("change_package", "servers:write")
        target = self.cloud.server(server, lock=True)
        if spec.disk_gb < target.disk_gb:
            raise InvalidRequest(
                f"dummy: disks cannot shrink ({target.disk_gb} GB -> {spec.disk_gb} GB)", status=422
            )
        if not self.cloud.resize_fits(target, spec):
            raise InvalidRequest(f"dummy: node {target.node} has not enough free resources", status=422)
        # Resources are reserved at once (as panels do); the task models the reconfiguration time.
        target.cpu_cores, target.memory_mb, target.disk_gb = spec.cpu_cores, spec.memory_mb, spec.disk_gb
        target.traffic_gb = spec.traffic_gb
        return self.cloud.start_task("change_package", target, lambda: {"cpu_cores": spec.cpu_cores})

    async def reset_password(self, server: ServerRef, password: str | None = None) -> PasswordReset:
        self._enter("reset_password", "servers:write")
        target = self.cloud.server(server, lock=True)
        if target.os_template is None:
            raise InvalidRequest(f"dummy: server {target.id} has no operating system yet", status=422)
        target.password = password or self.cloud.generate_password()
        user = "Administrator" if target.os_template.startswith("windows") else "root"
        return PasswordReset(username=user, password=target.password)

    async def rename(self, server: ServerRef, hostname: str, *, name: str | None = None) -> None:
        self._enter("rename", "servers:write")
        target = self.cloud.server(server)
        target.hostname = hostname
        if name is not None:
            target.name = name

    # --- usage, console, templates, backups ---------------------------------------------------------

    async def traffic(self, server: ServerRef) -> TrafficReport:
        """Calendar months since the server was created (at most 12), newest first.

        This month is the server's live counters (``rx_bytes``/``tx_bytes``, which tests set);
        earlier months are a stable made-up history derived from the server id and the month, scaled
        to the part of the month the server existed, so every view of it agrees.
        """
        self._enter("traffic", "servers:read")
        target = self.cloud.server(server)
        now = _utcnow()
        months: list[TrafficMonth] = []
        for index, window in enumerate(calendar_months(now, TRAFFIC_HISTORY_MONTHS)):
            if index and window.end <= target.created_at:
                break
            rx, tx = (target.rx_bytes, target.tx_bytes) if index == 0 else _past_month(target, window)
            months.append(
                TrafficMonth(
                    period_start=window.start,
                    period_end=add_months(window.start, 1),
                    rx_bytes=rx,
                    tx_bytes=tx,
                )
            )
        return TrafficReport(
            ref=target.ref,
            period_start=months[0].period_start,
            period_end=months[0].period_end,
            rx_bytes=target.rx_bytes,
            tx_bytes=target.tx_bytes,
            limit_bytes=None if target.traffic_gb is None else target.traffic_gb * 1024**3,
            months=tuple(months),
        )

    async def console(self, server: ServerRef) -> ConsoleTicket:
        self._enter("console", "console")
        target = self.cloud.server(server)
        if target.state != "running":
            raise InvalidRequest(f"dummy: server {target.id} is {target.state}; start it first", status=422)
        ticket = secrets.token_urlsafe(16)
        vnc = str(self.settings.get("console_vnc") or "")
        if vnc:
            # A real VNC server named in the settings ("host:port"): what the console relay opens.
            host, _, port = vnc.rpartition(":")
            return ConsoleTicket(
                kind="vnc",
                host=host or "127.0.0.1",
                port=int(port),
                expires_at=_utcnow() + dt.timedelta(seconds=60),
            )
        return ConsoleTicket(
            kind="novnc",
            url=f"{self.url.rstrip('/')}/console/{target.id}",
            ticket=ticket,
            expires_at=_utcnow() + dt.timedelta(seconds=60),
        )

    async def os_templates(self, plan: Mapping[str, Any] | None = None) -> list[OsTemplate]:
        self._enter("os_templates", "templates:read")
        allowed = (plan or {}).get("os_templates")
        return [t for t in TEMPLATES if not allowed or t.id in allowed]

    async def backups(self, server: ServerRef) -> list[Backup]:
        self._enter("backups", "backups")
        return list(self.cloud.server(server).backups)

    async def create_backup(self, server: ServerRef, *, note: str | None = None) -> TaskHandle:
        self._enter("create_backup", "backups")
        target = self.cloud.server(server, lock=True)

        def done() -> dict[str, Any]:
            backup = Backup(
                id=f"backup-{target.id}-{len(target.backups) + 1}",
                created_at=_utcnow(),
                size_bytes=target.disk_gb * 1024**3 // 5,
                note=note,
            )
            target.backups.append(backup)
            return {"backup_id": backup.id}

        return self.cloud.start_task("backup", target, done)

    async def restore_backup(self, server: ServerRef, backup_id: str) -> TaskHandle:
        self._enter("restore_backup", "backups")
        target = self.cloud.server(server, lock=True)
        if backup_id not in {b.id for b in target.backups}:
            raise InvalidRequest(f"dummy: server {target.id} has no backup {backup_id!r}", status=422)
        previous = target.state
        target.state = "building"

        def done() -> dict[str, Any]:
            target.state = "running" if previous in ("running", "building") else previous
            return {"backup_id": backup_id}

        return self.cloud.start_task("restore", target, done)
