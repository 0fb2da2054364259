"""The ``virtfusion`` platform driver: the :class:`Platform` interface on the VirtFusion API v1.

Credentials: ``{"token": "<API token>"}``. Platform settings (all optional):

``panel_url``
    The panel's public web root, used for single sign-on and console links and as the only host a
    login redirect may point to (default: the platform URL without ``/api/v1``).
``hypervisor_group_id`` / ``package_id`` / ``default_ipv4``
    Defaults when a product does not set them (product ``placement.hypervisor_group_id`` and
    ``extra.package_id`` win; configurable options win over both).
``option_names``
    Overrides of :data:`~.options.DEFAULT_OPTION_NAMES` (API field -> configurable option name).
``terminate_delay_minutes``
    Grace period VirtFusion waits before deleting a terminated server (default 0, immediate).
``build_email`` / ``password_email``
    Let VirtFusion e-mail the client on build / password reset (default off: the root password is
    captured and handed to billing, which sends its own welcome e-mail).
``max_retries``, ``connect_timeout``, ``read_timeout``
    HTTP tuning (defaults 2, 10 s, 30 s).

Task handles: ``build:<server id>`` is polled through ``GET /servers/{id}`` (a build has no queue id),
``queue:<queue id>`` through ``GET /queue/{id}``; operations the API completes synchronously return
an already ``succeeded`` handle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

from vpsbridge.http.errors import UpstreamAuthError, UpstreamError, UpstreamNotFound
from vpsbridge.http.streams import ByteStream
from vpsbridge.platforms.base import Platform
from vpsbridge.platforms.errors import InvalidRequest, ServerMissing
from vpsbridge.platforms.models import (
    TRAFFIC_HISTORY_MONTHS,
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
    TrafficMonth,
    TrafficReport,
)
from vpsbridge.platforms.self_service import Currency, HourlyUsage, UsageLine, UsageReport
from vpsbridge.platforms.virtfusion.client import PowerVerb, VirtFusionClient, panel_base
from vpsbridge.platforms.virtfusion.errors import ScopeMissing, SsoRedirectRefused, UserRelationConflict
from vpsbridge.platforms.virtfusion.options import MappedOptions, map_options
from vpsbridge.platforms.virtfusion.scopes import SCOPES

#: Read-only probes run by ``test_connection``: permission -> a GET that needs exactly it. A 404 on
#: a probe means "allowed" (the id 0 never exists); only 401/403 fail the check.
PROBES: dict[str, str] = {
    "compute:read": "/compute/hypervisors/groups",
    "packages:read": "/packages/0",
    "media:read": "/media/templates/fromServerPackageSpec/0",
    "users:read": "/users/0/byExtRelation",
    "servers:read": "/queue/0",
}

_POWER: dict[str, PowerVerb] = {
    "start": "boot",
    "stop": "poweroff",
    "shutdown": "shutdown",
    "restart": "restart",
    # VirtFusion has no hard reset; a restart is the closest it offers.
    "reset": "restart",
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _parse_time(value: Any) -> dt.datetime:
    """VirtFusion timestamps come as ISO 8601 or ``YYYY-MM-DD HH:MM:SS`` (UTC); both are read."""
    text = str(value or "").strip().replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return _utcnow()
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _has_time(value: Any) -> bool:
    text = str(value or "").strip().replace("Z", "+00:00")
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _amount(value: Any) -> float:
    """A number the panel may send as a number, a string ("12.30") or ``false`` (none)."""
    if isinstance(value, bool) or value is None:
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _period_bounds(start: Any, end: Any) -> tuple[dt.datetime, dt.datetime]:
    """A self-service period's start and end; the current calendar month when the panel gave none."""
    if _has_time(start):
        first = _parse_time(start)
        return first, _parse_time(end) if _has_time(end) else first
    now = _utcnow()
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return first, now


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when the panel sent an object there, else an empty one (fields vary by version)."""
    return value if isinstance(value, Mapping) else {}


def _sid(server: ServerRef) -> int:
    try:
        return int(server.external_id)
    except ValueError:
        raise InvalidRequest(f"virtfusion: {server.external_id!r} is not a VirtFusion server id") from None


def _int_setting(value: Any, what: str) -> int:
    try:
        return int(str(value).split("|", 1)[0])
    except (TypeError, ValueError):
        raise InvalidRequest(f"virtfusion: {what} must be a number, got {value!r}") from None


def _done(kind: str, server: ServerRef | None, **result: Any) -> TaskHandle:
    ident = f"done:{kind}:{server.external_id if server else ''}"
    return TaskHandle(id=ident, kind=kind, state="succeeded", server=server, progress=100, result=result)


def addresses(server: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """IPv4 addresses and IPv6 addresses/subnets of every interface (primary and secondary)."""
    network = server.get("network") or {}
    v4: list[str] = []
    v6: list[str] = []
    for iface in list(network.get("interfaces") or []) + list(network.get("secondaryInterfaces") or []):
        for entry in iface.get("ipv4") or []:
            if entry.get("address"):
                v4.append(str(entry["address"]))
        for entry in iface.get("ipv6") or []:
            v6.extend(str(a) for a in entry.get("addresses") or [])
            if entry.get("subnet"):
                v6.append(f"{entry['subnet']}/{entry.get('cidr', 64)}")
    return v4, v6


def live_stats(remote: Any) -> tuple[PowerState | None, dict[str, float]]:
    """Power state and usage from ``remoteState`` (libvirt balloon or Windows agent memory shapes)."""
    if not isinstance(remote, dict):
        return None, {}
    state_name = str(remote.get("state") or "")
    state: PowerState | None = {"running": "running", "shutoff": "stopped", "paused": "stopped"}.get(
        state_name
    )  # type: ignore[assignment]
    stats: dict[str, float] = {}
    if isinstance(remote.get("cpu"), int | float):
        stats["cpu_pct"] = float(remote["cpu"])
    memory = remote.get("memory") or {}
    if isinstance(memory, dict):
        if "memtotal" in memory and "memfree" in memory:  # Windows guest agent
            stats["memory_used_mb"] = round((memory["memtotal"] - memory["memfree"]) / 1024, 1)
            stats["memory_total_mb"] = round(memory["memtotal"] / 1024, 1)
        elif "actual" in memory and "unused" in memory:  # Linux balloon driver
            stats["memory_used_mb"] = round((memory["actual"] - memory["unused"]) / 1024, 1)
            stats["memory_total_mb"] = round(memory["actual"] / 1024, 1)
    fsinfo = (remote.get("agent") or {}).get("fsinfo") or []
    if fsinfo:
        stats["disk_used_gb"] = round(sum(int(f.get("used-bytes") or 0) for f in fsinfo) / 1024**3, 2)
    return state, stats


class VirtFusionPlatform(Platform):
    """One VirtFusion panel. Capacity is reported per hypervisor of a group (``placement``)."""

    SUPPORTS = frozenset(
        str(c)
        for c in (
            Capability.CAPACITY,
            Capability.CREATE,
            Capability.BUILD,
            Capability.POWER,
            Capability.SUSPEND,
            Capability.TERMINATE,
            Capability.CHANGE_PACKAGE,
            Capability.RESET_PASSWORD,
            Capability.RENAME,
            Capability.LIVE_STATS,
            Capability.TRAFFIC,
            Capability.CONSOLE,
            Capability.OS_TEMPLATES,
        )
    )

    def _setup(self) -> None:
        token = str(self.credentials.get("token") or "")
        self.client = VirtFusionClient(
            self.url,
            token,
            verify=self.verify,
            transport=self.transport,
            recorder=self.recorder,
            connect_timeout=float(self.settings.get("connect_timeout", 10.0)),
            read_timeout=float(self.settings.get("read_timeout", 30.0)),
            max_retries=int(self.settings.get("max_retries", 2)),
            retry_wait_initial=float(self.settings.get("retry_wait_initial", 0.25)),
        )
        self.panel_url = str(self.settings.get("panel_url") or panel_base(self.url)).rstrip("/")

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- connection --------------------------------------------------------------------------------

    async def test_connection(self) -> ConnectionReport:
        checks: list[Check] = []
        try:
            await self.client.connect()
        except UpstreamAuthError as exc:
            checks.append(
                Check(name="authentication", ok=False, detail=f"the API token was rejected ({exc.status})")
            )
            return ConnectionReport.from_checks(checks)
        except UpstreamError as exc:
            checks.append(Check(name="connection", ok=False, detail=str(exc)))
            return ConnectionReport.from_checks(checks)
        checks.append(Check(name="connection", ok=True, detail=f"{self.client.base_url} answered /connect"))
        checks.append(Check(name="authentication", ok=True, detail="token accepted"))
        for scope, path in PROBES.items():
            checks.append(await self._probe(scope, path))
        return ConnectionReport.from_checks(checks)

    async def _probe(self, scope: str, path: str) -> Check:
        name = f"permission {scope}"
        try:
            params = {"results": 1} if path.startswith("/compute") else None
            await self.client._request("GET", path, params=params)
        except UpstreamNotFound:
            pass
        except ScopeMissing:
            return Check(
                name=name,
                ok=False,
                detail=f"grant the API token the {scope!r} permission (needed to {SCOPES[scope]})",
                missing_scope=scope,
            )
        except UpstreamError as exc:
            return Check(name=name, ok=False, detail=str(exc))
        return Check(name=name, ok=True, detail=SCOPES[scope])

    # --- users -------------------------------------------------------------------------------------

    async def ensure_user(
        self, ext_relation_id: int | str, *, name: str, email: str, self_service: int | None = None
    ) -> dict[str, Any]:
        """The panel user linked to a billing client, created when there is none.

        A user with the same e-mail but no (or another) relation id makes creation fail; that becomes
        :class:`UserRelationConflict` with the exact fix, never a second user.
        """
        ext = _int_setting(ext_relation_id, "the billing client id")
        try:
            return await self.client.user_by_ext(ext)
        except UpstreamNotFound:
            pass
        body: dict[str, Any] = {"name": name or email, "email": email, "extRelationId": ext}
        if self_service:
            body["selfService"] = int(self_service)
            # Hourly self-service (1, 3) is billed from the credit balance the portal tops up.
            body["selfServiceHourlyCredit"] = int(self_service) in (1, 3)
        try:
            return await self.client.create_user(body)
        except InvalidRequest as exc:
            if "email" in str(exc).lower() and "taken" in str(exc).lower():
                raise UserRelationConflict(
                    f"virtfusion: a panel user with e-mail {email} already exists but is not linked to "
                    f"billing client {ext}. In VirtFusion open Users, edit that user and set its "
                    f"External Relation ID to {ext} (or give the client another e-mail), then retry.",
                    status=exc.status,
                ) from exc
            raise

    # --- creation ----------------------------------------------------------------------------------

    def map_options(self, options: Mapping[str, Any] | None) -> MappedOptions:
        return map_options(options or {}, self.settings.get("option_names"))

    async def server_body(self, spec: ServerSpec, user_id: int) -> dict[str, Any]:
        """The ``POST /servers`` body for a spec: package, group, IPv4 count and mapped options."""
        mapped = self.map_options(spec.extra.get("options"))
        package = (
            mapped.fields.get("packageId") or spec.extra.get("package_id") or self.settings.get("package_id")
        )
        group = (
            mapped.fields.get("hypervisorId")
            or spec.placement.get("hypervisor_group_id")
            or self.settings.get("hypervisor_group_id")
        )
        if not package:
            raise InvalidRequest(
                "virtfusion: no package id (product extra.package_id or platform package_id)"
            )
        if not group:
            raise InvalidRequest(
                "virtfusion: no hypervisor group (product placement.hypervisor_group_id or platform setting)"
            )
        ipv4 = mapped.fields.get("ipv4", spec.extra.get("ipv4", self.settings.get("default_ipv4", spec.ipv4)))
        body: dict[str, Any] = {
            **{k: v for k, v in mapped.fields.items() if k not in ("packageId", "hypervisorId", "ipv4")},
            "packageId": _int_setting(package, "package id"),
            "userId": int(user_id),
            "hypervisorId": _int_setting(group, "hypervisor group id"),
            "ipv4": max(1, _int_setting(ipv4, "IPv4 count")),
        }
        return body

    async def _owner(self, spec: ServerSpec) -> dict[str, Any]:
        if not spec.owner:
            raise InvalidRequest("virtfusion: a server needs an owner (the billing client id)")
        user = spec.extra.get("user") or {}
        return await self.ensure_user(
            spec.owner,
            name=str(user.get("name") or ""),
            email=str(user.get("email") or ""),
            self_service=user.get("self_service"),
        )

    async def validate(self, spec: ServerSpec) -> list[str]:
        """Dry-run ``POST /servers``: the panel's reasons the spec would be refused (empty = valid)."""
        owner = await self._owner(spec)
        body = await self.server_body(spec, int(owner["id"]))
        try:
            await self.client.create_server(body, dry_run=True)
        except InvalidRequest as exc:
            return [str(exc)]
        return []

    async def create_server(self, spec: ServerSpec) -> TaskHandle:
        owner = await self._owner(spec)
        body = await self.server_body(spec, int(owner["id"]))
        created = await self.client.create_server(body)
        ref = ServerRef(external_id=str(created["id"]), node=str(created.get("hypervisorId") or "") or None)
        result = {"server_id": int(created["id"]), "user_id": int(owner["id"]), "server_object": created}
        if not spec.os_template:
            return _done("create", ref, **result)
        handle = await self.build(
            ref,
            spec.os_template,
            ssh_keys=spec.ssh_keys,
            hostname=spec.hostname,
            name=spec.name,
            swap=spec.extra.get("swap"),
        )
        return handle.model_copy(update={"result": {**result, **handle.result}})

    async def build(
        self,
        server: ServerRef,
        os_template: str,
        *,
        ssh_keys: Sequence[str] = (),
        hostname: str | None = None,
        password: str | None = None,
        name: str | None = None,
        swap: float | None = None,
    ) -> TaskHandle:
        """Install ``os_template``; keys are ids or pasted public keys (stored in the panel first).

        ``hostname`` is the machine's host name, ``name`` the label shown in the panel (they are
        separate: a rename must not change what PTR records point at). VirtFusion generates the root
        password and returns it once; it is in ``result["root_password"]`` for the caller to encrypt.
        """
        if password:
            raise InvalidRequest("virtfusion: the panel generates the root password; it cannot be chosen")
        sid = _sid(server)
        key_ids = await self._ssh_key_ids(sid, ssh_keys)
        body: dict[str, Any] = {
            "operatingSystemId": _int_setting(os_template, "OS template id"),
            "email": bool(self.settings.get("build_email", False)),
        }
        if name or hostname:
            body["name"] = name or hostname
        if hostname:
            body["hostname"] = hostname
        if key_ids:
            body["sshKeys"] = key_ids
        if swap is not None:
            body["swap"] = swap
        data = await self.client.build(sid, body)
        password_out = (data.get("settings") or {}).get("decryptedPassword")
        return TaskHandle(
            id=f"build:{sid}",
            kind="build",
            state="running",
            server=server,
            progress=0,
            result={"root_password": password_out, "ssh_key_ids": key_ids, "hostname": hostname},
        )

    async def _ssh_key_ids(self, sid: int, keys: Sequence[str]) -> list[int]:
        ids: list[int] = []
        pasted = [k.strip() for k in keys if k.strip() and not k.strip().isdigit()]
        ids.extend(int(k) for k in keys if k.strip().isdigit())
        if pasted:
            owner_id = int((await self.client.server(sid))["ownerId"])
            label = f"vpsbridge-{_utcnow():%Y-%m-%d}"
            for n, key in enumerate(pasted, start=1):
                created = await self.client.create_ssh_key(owner_id, f"{label}-{n}", key)
                ids.append(int(created["id"]))
        return ids

    # --- tasks -------------------------------------------------------------------------------------

    async def task_status(self, task: TaskHandle) -> TaskHandle:
        if task.finished:
            return task
        kind, _, ident = task.id.partition(":")
        if kind == "queue":
            data = await self.client.queue_task(int(ident))
            state: TaskState = "running"
            if data.get("failed"):
                state = "failed"
            elif data.get("finished"):
                state = "succeeded"
            error = None
            if state == "failed":
                exception = (data.get("errors") or {}).get("exception") or {}
                error = str(exception.get("message") or "the panel reports the task as failed")
            progress = data.get("progress")
            return task.model_copy(
                update={
                    "state": state,
                    "error": error,
                    "progress": max(0, min(100, int(progress)))
                    if isinstance(progress, int | float)
                    else None,
                }
            )
        if kind == "build":
            try:
                data = await self.client.server(int(ident))
            except ServerMissing:
                return task.model_copy(update={"state": "failed", "error": "the server no longer exists"})
            if data.get("buildFailed"):
                return task.model_copy(
                    update={"state": "failed", "error": "the panel reports the build failed"}
                )
            active = bool((data.get("tasks") or {}).get("active"))
            if active or data.get("state") != "complete":
                return task.model_copy(update={"state": "running"})
            v4, v6 = addresses(data)
            result = {**task.result, "ipv4": v4, "ipv6": v6}
            return task.model_copy(update={"state": "succeeded", "progress": 100, "result": result})
        raise InvalidRequest(f"virtfusion: unknown task handle {task.id!r}")

    # --- server information ----------------------------------------------------------------------

    async def server_info(self, server: ServerRef, *, live: bool = False) -> ServerInfo:
        data = await self.client.server(_sid(server), remote_state=live)
        return self.info_from(data, live=live)

    def info_from(self, data: Mapping[str, Any], *, live: bool) -> ServerInfo:
        resources = (data.get("settings") or {}).get("resources") or {}
        v4, v6 = addresses(data)
        remote_state, stats = live_stats(data.get("remoteState")) if live else (None, {})
        state: PowerState
        if data.get("suspended"):
            state = "suspended"
        elif data.get("state") in ("queued", "building") or (
            data.get("state") != "complete" and (data.get("tasks") or {}).get("active")
        ):
            state = "building"
        elif data.get("state") == "allocated":
            state = "stopped"
        else:
            state = remote_state or "unknown"
        hostname = data.get("hostname") or None
        os_id = (data.get("settings") or {}).get("osTemplateInstallId")
        hypervisor = _mapping(data.get("hypervisor"))
        group = _mapping(hypervisor.get("group"))
        # The guest agent's get-osinfo keys, when the panel passes them on.
        guest_os = _mapping(_mapping(data.get("qemuAgent")).get("os"))
        return ServerInfo(
            ref=ServerRef(external_id=str(data["id"]), node=str(data.get("hypervisorId") or "") or None),
            hostname=hostname,
            name=data.get("name") or None,
            state=state,
            suspended=bool(data.get("suspended")),
            cpu_cores=resources.get("cpuCores"),
            memory_mb=resources.get("memory"),
            disk_gb=resources.get("storage"),
            ipv4=tuple(v4),
            ipv6=tuple(v6),
            os_template=str(os_id) if os_id else None,
            os_name=guest_os.get("pretty-name") or guest_os.get("name") or None,
            kernel=guest_os.get("kernel-release") or None,
            location=group.get("name") or hypervisor.get("displayName") or hypervisor.get("name") or None,
            maintenance=bool(hypervisor.get("maintenance")),
            live=live,
            stats=stats,
            raw=dict(data),
        )

    # --- lifecycle ---------------------------------------------------------------------------------

    async def power(self, server: ServerRef, action: PowerAction) -> TaskHandle:
        verb = _POWER[action]
        data = await self.client.power(_sid(server), verb)
        return self._queue_handle(f"power:{action}", server, data)

    def _queue_handle(self, kind: str, server: ServerRef, data: Mapping[str, Any]) -> TaskHandle:
        queue_id = data.get("queueId")
        if queue_id is None:
            return _done(kind, server)
        return TaskHandle(id=f"queue:{int(queue_id)}", kind=kind, state="pending", server=server)

    async def _gone_ok(self, kind: str, server: ServerRef, call: Any) -> TaskHandle:
        """Run a lifecycle call where "server not found" is the desired end state, not an error."""
        try:
            await call
        except ServerMissing as exc:
            return _done(kind, server, server_missing=True, detail=str(exc))
        return _done(kind, server)

    async def suspend(self, server: ServerRef) -> TaskHandle:
        return await self._gone_ok("suspend", server, self.client.suspend(_sid(server)))

    async def unsuspend(self, server: ServerRef) -> TaskHandle:
        return await self._gone_ok("unsuspend", server, self.client.unsuspend(_sid(server)))

    async def terminate(self, server: ServerRef) -> TaskHandle:
        """Delete the server; a server the panel no longer has counts as terminated.

        Returns a succeeded handle whose ``result["server_missing"]`` tells the caller to clean up
        its own records without treating the answer as an error.
        """
        delay = int(self.settings.get("terminate_delay_minutes", 0))
        handle = await self._gone_ok(
            "terminate", server, self.client.delete_server(_sid(server), delay_minutes=delay)
        )
        return handle.model_copy(update={"result": {**handle.result, "delay_minutes": delay}})

    async def change_package(self, server: ServerRef, spec: ServerSpec) -> TaskHandle:
        """Move to ``spec.extra["package_id"]``, then re-apply memory / cores / traffic options.

        The panel's ``info[]`` (e.g. "primary disk not updated") is returned as ``warnings``: the
        change succeeded, but the operator should know what did not grow.
        """
        sid = _sid(server)
        mapped = self.map_options(spec.extra.get("options"))
        package = mapped.fields.get("packageId") or spec.extra.get("package_id")
        if not package:
            raise InvalidRequest("virtfusion: change_package needs extra.package_id")
        warnings = await self.client.change_package(
            sid, _int_setting(package, "package id"), spec.extra.get("package_flags")
        )
        modified = mapped.modify_values()
        for field_name, value in modified.items():
            await self.client.modify(sid, field_name, value)  # type: ignore[arg-type]
        return _done("change_package", server, warnings=warnings, modified=modified)

    async def modify(
        self,
        server: ServerRef,
        *,
        memory_mb: int | None = None,
        cpu_cores: int | None = None,
        traffic_gb: int | None = None,
    ) -> None:
        """Change single resources (``traffic_gb=0`` = unmetered)."""
        sid = _sid(server)
        if memory_mb is not None:
            await self.client.modify(sid, "memory", memory_mb)
        if cpu_cores is not None:
            await self.client.modify(sid, "cpuCores", cpu_cores)
        if traffic_gb is not None:
            await self.client.modify(sid, "traffic", traffic_gb)

    async def reset_password(
        self,
        server: ServerRef,
        password: str | None = None,
        *,
        user: str = "root",
        send_mail: bool | None = None,
    ) -> PasswordReset:
        """New root (or ``Administrator``) password, generated by the panel and applied by a task."""
        if password:
            raise InvalidRequest("virtfusion: the panel generates the new password; it cannot be chosen")
        mail = bool(self.settings.get("password_email", False)) if send_mail is None else send_mail
        data = await self.client.reset_password(_sid(server), user=user, send_mail=mail)
        task = self._queue_handle("reset_password", server, data)
        return PasswordReset(username=user, password=str(data["expectedPassword"]), task=task)

    async def rename(self, server: ServerRef, hostname: str, *, name: str | None = None) -> None:
        """Change the panel label (``PUT /modify/name``); the API cannot change a built host name."""
        await self.client.rename(_sid(server), name or hostname)

    # --- usage, console, templates, backups ------------------------------------------------------

    async def traffic(self, server: ServerRef) -> TrafficReport:
        """The current period and up to 12 before it, from ``data.monthly[]`` (newest first).

        VirtFusion's periods run from the server's creation day (6th to 5th), not calendar months;
        they are passed on as they are. Entries without a readable start are skipped rather than
        dated "now", so one odd row cannot pose as the current month.
        """
        data = await self.client.traffic(_sid(server))
        rows = [m for m in data.get("monthly") or [] if isinstance(m, dict) and _has_time(m.get("start"))]
        if not rows:
            now = _utcnow()
            return TrafficReport(ref=server, period_start=now, period_end=now)
        months = tuple(
            sorted(
                (
                    TrafficMonth(
                        period_start=_parse_time(m.get("start")),
                        period_end=_parse_time(m.get("end") or m.get("start")),
                        rx_bytes=max(0, int(m.get("rx") or 0)),
                        tx_bytes=max(0, int(m.get("tx") or 0)),
                    )
                    for m in rows
                ),
                key=lambda m: m.period_start,
                reverse=True,
            )[:TRAFFIC_HISTORY_MONTHS]
        )
        current = max(rows, key=lambda m: _parse_time(m.get("start")))
        limit_gb = int(current.get("limit") or 0)
        return TrafficReport(
            ref=server,
            period_start=months[0].period_start,
            period_end=months[0].period_end,
            rx_bytes=months[0].rx_bytes,
            tx_bytes=months[0].tx_bytes,
            limit_bytes=limit_gb * 1024**3 if limit_gb > 0 else None,
            months=months,
        )

    async def console(self, server: ServerRef) -> ConsoleTicket:
        """Enable the console, which rotates its websocket token: every ticket is fresh."""
        data = await self.client.vnc_action(_sid(server), "enable")
        vnc = data.get("vnc") or {}
        wss = vnc.get("wss") or {}
        self.client.add_secret(wss.get("token"), vnc.get("password"))
        return ConsoleTicket(
            kind="novnc",
            url=urljoin(self.panel_url + "/", str(wss.get("url") or "").lstrip("/")),
            host=vnc.get("ip"),
            port=vnc.get("port"),
            ticket=wss.get("token"),
            password=vnc.get("password"),
            expires_at=_utcnow() + dt.timedelta(seconds=60),
        )

    async def console_stream(self, ticket: ConsoleTicket) -> ByteStream:
        """The panel's console websocket (``wss://<panel>/vnc/?token=``); the token is redacted."""
        if ticket.kind != "novnc" or not ticket.url:
            return await super().console_stream(ticket)
        self.client.add_secret(ticket.ticket)
        return await self.client.open_websocket(ticket.url)

    async def os_templates(self, plan: Mapping[str, Any] | None = None) -> list[OsTemplate]:
        package = (plan or {}).get("package_id") or self.settings.get("package_id")
        if not package:
            raise InvalidRequest("virtfusion: OS templates are listed per package; give plan package_id")
        out: list[OsTemplate] = []
        for category in await self.client.templates_for_package(_int_setting(package, "package id")):
            for t in category.get("templates") or []:
                features = []
                if t.get("type") == "windows":
                    features.append("windows")
                if t.get("eol"):
                    features.append("eol")
                label = " ".join(str(p) for p in (t.get("name"), t.get("version"), t.get("variant")) if p)
                out.append(
                    OsTemplate(
                        id=str(t["id"]),
                        name=label,
                        family=category.get("name"),
                        version=t.get("version"),
                        features=tuple(features),
                    )
                )
        return out

    async def backups(self, server: ServerRef) -> list[Backup]:
        return [
            Backup(
                id=str(b["id"]),
                created_at=_parse_time(b.get("created")),
                note=((b.get("storage") or {}).get("name")),
            )
            for b in await self.client.backups(_sid(server))
            if b.get("complete") and not b.get("deleting")
        ]

    async def capacity(self, placement: Mapping[str, Any]) -> CapacityReport:
        """Free resources of every hypervisor in ``placement["hypervisor_group_id"]`` (all pages).

        ``max 0`` means unlimited in VirtFusion; such a resource is reported with its allocation as
        the total so free is 0 only when truly exhausted (stock math reads the raw resources).
        """
        group = placement.get("hypervisor_group_id") or self.settings.get("hypervisor_group_id")
        if not group:
            raise InvalidRequest("virtfusion: capacity needs placement hypervisor_group_id")
        nodes = []
        for item in await self.client.group_resources(_int_setting(group, "hypervisor group id")):
            hv, res = item.get("hypervisor") or {}, item.get("resources") or {}
            mem, cpu = res.get("memory") or {}, res.get("cpuCores") or {}
            disk, servers = res.get("localStorage") or {}, res.get("servers") or {}
            nodes.append(
                NodeCapacity(
                    name=str(hv.get("name") or hv.get("id")),
                    enabled=bool(hv.get("enabled"))
                    and bool(hv.get("commissioned", True))
                    and not hv.get("prohibit"),
                    cpu_cores=int(cpu.get("max") or 0),
                    cpu_cores_free=int(cpu.get("free") or 0),
                    memory_mb=int(mem.get("max") or 0),
                    memory_mb_free=int(mem.get("free") or 0),
                    disk_gb=int(disk.get("max") or 0),
                    disk_gb_free=int(disk.get("free") or 0),
                    servers=int(servers.get("allocated") or 0),
                    max_servers=int(servers.get("max") or 0) or None,
                )
            )
        return CapacityReport(placement=dict(placement), nodes=tuple(nodes))

    # --- VirtFusion-only operations (used by billing and the portal) -----------------------------

    async def sso_url(self, ext_relation_id: int | str, server: ServerRef) -> str:
        """A one-time panel login URL for the client, only ever on the configured panel host."""
        data = await self.client.server_login_tokens(_int_setting(ext_relation_id, "client id"), _sid(server))
        endpoint = str(((data.get("authentication") or {}).get("endpoint_complete")) or "")
        url = (
            urljoin(self.panel_url + "/", endpoint.lstrip("/")) if not urlsplit(endpoint).scheme else endpoint
        )
        expected, got = urlsplit(self.panel_url), urlsplit(url)
        if (got.scheme, got.netloc) != (expected.scheme, expected.netloc) or not endpoint:
            raise SsoRedirectRefused(
                f"virtfusion: login URL points to {got.scheme}://{got.netloc}, not the panel {self.panel_url}"
            )
        return url

    async def reset_panel_login(self, ext_relation_id: int | str) -> tuple[str, str]:
        """(e-mail, new password) of the client's panel login."""
        data = await self.client.reset_user_password(_int_setting(ext_relation_id, "client id"))
        return str(data["email"]), str(data["password"])

    async def self_service_usage(
        self, ext_relation_id: int | str, *, range_: str | None = None
    ) -> dict[str, Any]:
        return await self.client.self_service_usage(_int_setting(ext_relation_id, "client id"), range_=range_)

    async def self_service_report(
        self, ext_relation_id: int | str, *, period: int | None = None
    ) -> dict[str, Any]:
        return await self.client.self_service_report(
            _int_setting(ext_relation_id, "client id"), period=period
        )

    async def hourly_usage(self, ext_relation_id: int | str) -> HourlyUsage:
        """The client's hourly usage in the current self-service period (billable servers and add-ons).

        ``tokenReal`` is the exact amount (``token`` is rounded); tokens are credited 1:1 for money.
        """
        data = await self.client.self_service_usage(_int_setting(ext_relation_id, "client id"), range_="m")
        periods = [p for p in data.get("periods") or [] if isinstance(p, dict)]
        current = next((p for p in periods if p.get("currentPeriod")), periods[0] if periods else {})
        servers = data.get("usageServersBillable") or data.get("usageServers") or {}
        addons = data.get("usageAddonsBillable") or {}
        start, end = _period_bounds(current.get("start"), current.get("end"))
        return HourlyUsage(
            period_start=start,
            period_end=end,
            hours=_amount(servers.get("hours")),
            cost=round(_amount(servers.get("tokenReal")) + _amount(addons.get("tokenReal")), 2),
        )

    async def usage_report(self, ext_relation_id: int | str, *, period: int = 0) -> UsageReport:
        """The self-service report of a period (0 = current): a line per server and the month's total.

        The panel writes "no value" as ``false``; that reads as 0 here.
        """
        data = await self.self_service_report(ext_relation_id, period=period)
        usage = data.get("usage") or {}
        bounds = usage.get("period") or {}
        currency = data.get("currency") or {}
        total = usage.get("monthlyTotal") or {}
        start, end = _period_bounds(bounds.get("start"), bounds.get("end"))
        return UsageReport(
            term=str(usage.get("term") or ""),
            period_start=start,
            period_end=end,
            lines=tuple(
                UsageLine(
                    server_id=None if line.get("id") is None else str(line["id"]),
                    name=str(line.get("name") or line.get("hostname") or f"#{line.get('id', '?')}"),
                    hours=_amount(line.get("hours")),
                    cost=_amount(line.get("value")),
                )
                for line in usage.get("servers") or []
                if isinstance(line, dict)
            ),
            total_hours=_amount(total.get("hours")),
            total_cost=_amount(total.get("value")),
            currency=Currency(
                code=str(currency.get("code") or ""),
                prefix=str(currency.get("prefix") or ""),
                suffix=str(currency.get("suffix") or ""),
            ),
        )

    async def credit_balance(self, ext_relation_id: int | str) -> float:
        """The client's self-service credit (``hourlyStats`` ``credit.value``; usage has no balance)."""
        data = await self.client.hourly_stats(_int_setting(ext_relation_id, "client id"))
        return float(((data.get("credit") or {}).get("value")) or 0)

    async def add_credit(
        self, ext_relation_id: int | str, tokens: float, *, reference: int | None = None, note: str = ""
    ) -> int:
        """Credit the client's self-service balance; ``reference`` (e.g. the invoice id) is an integer."""
        if tokens <= 0:
            raise InvalidRequest("virtfusion: credit must be positive")
        return await self.client.add_credit(
            _int_setting(ext_relation_id, "client id"), tokens, reference_1=reference, reference_2=note
        )

    async def add_ipv4(self, server: ServerRef, quantity: int) -> list[str]:
        return await self.client.add_ipv4_quantity(_sid(server), quantity)

    async def remove_ipv4(self, server: ServerRef, addresses_: Sequence[str]) -> None:
        await self.client.remove_ipv4(_sid(server), list(addresses_))

    async def remove_ipv4_quantity(self, server: ServerRef, quantity: int) -> list[str]:
        """Remove the ``quantity`` most recently added IPv4 addresses, never the primary one."""
        info = await self.client.server(_sid(server))
        v4, _ = addresses(info)
        if quantity >= len(v4):
            raise InvalidRequest(
                f"virtfusion: the server has {len(v4)} IPv4 address(es); the first must stay"
            )
        chosen = v4[len(v4) - quantity :]
        await self.client.remove_ipv4(_sid(server), chosen)
        return chosen

    async def traffic_blocks(self, server: ServerRef) -> dict[str, Any]:
        return await self.client.traffic_blocks(_sid(server))

    async def add_traffic_block(self, server: ServerRef, amount_gb: int, *, month: int = 1) -> None:
        await self.client.add_traffic_block(_sid(server), month=month, amount_gb=amount_gb)

    async def remove_traffic_block(self, server: ServerRef, block_id: int) -> None:
        await self.client.remove_traffic_block(_sid(server), block_id)

    async def package(self, package_id: int) -> dict[str, Any]:
        return await self.client.package(package_id)

    async def group_resources(self, group_id: int) -> list[dict[str, Any]]:
        return await self.client.group_resources(group_id)
