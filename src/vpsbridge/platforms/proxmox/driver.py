"""The ``proxmox`` platform driver: the :class:`Platform` interface plus the Proxmox steps workflows use.

A Proxmox deploy is not one API call: the deploy, change-package and terminate workflows drive it
step by step (clone, migrate, CPU/RAM, disks, I/O limits, network, firewall, cloud-init, start), so
besides the generic interface this driver exposes each step as a method. Long steps return a
:class:`TaskHandle` whose id is the UPID (which names its node); quick ones return ``None``.

Rules it keeps for its callers:

* a VM is addressed by ``ServerRef(external_id=str(vmid), node=...)``; when the node is unknown or
  stale (after a migration) it is looked up in ``/cluster/resources``, and ``ServerMissing`` is raised
  only when the cluster confirms the VMID is gone - never on a timeout or a 5xx;
* disks are never shrunk, I/O limits are re-sent with the full drive string, and nothing is sent
  when there is nothing to change;
* destructive calls can be guarded by the ownership marker written at deploy time, so a VMID that
  was reused by somebody else is never destroyed.

Credentials: ``token_id`` + ``token_secret`` (or ``api_token`` as ``user@realm!id=secret``);
optionally ``console_user`` + ``console_password`` for console tickets. Settings: ``node_concurrency``,
``cpu_overcommit``, ``ram_overcommit``, ``storage`` (default target storage), ``task_timeout``,
``poll_interval``, ``read_timeout``, ``max_retries``, ``retry_wait``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2

from vpsbridge.core.disks import (
    Drive,
    format_property_string,
    free_drive_key,
    gib,
    parse_drive,
    parse_property_string,
    system_disk,
)
from vpsbridge.core.traffic import (
    RateSample,
    add_months,
    calendar_months,
    estimate_months,
    samples_with_steps,
)
from vpsbridge.http.errors import UpstreamAuthError, UpstreamError, UpstreamNotFound
from vpsbridge.http.streams import ByteStream
from vpsbridge.platforms.base import Platform
from vpsbridge.platforms.errors import InvalidRequest, ServerLocked, ServerMissing
from vpsbridge.platforms.models import (
    TRAFFIC_HISTORY_MONTHS,
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
    TaskHandle,
    TrafficMonth,
    TrafficReport,
)
from vpsbridge.platforms.proxmox.client import ProxmoxClient, decode_sshkeys, encode_sshkeys
from vpsbridge.platforms.proxmox.errors import NotOwned, VmidTaken
from vpsbridge.platforms.proxmox.upid import exit_ok, is_upid

#: Privileges the integration token needs, with what each is for (checked by ``test_connection``).
REQUIRED_PRIVILEGES: dict[str, str] = {
    "VM.Audit": "read VM configs, status and tasks",
    "VM.Clone": "clone templates",
    "VM.Allocate": "create and destroy VMs",
    "VM.Migrate": "move VMs to the chosen node",
    "VM.Config.CPU": "set CPU cores",
    "VM.Config.Memory": "set RAM",
    "VM.Config.Disk": "resize and add disks, set I/O limits",
    "VM.Config.Network": "set network, rate limits and firewall",
    "VM.Config.Cloudinit": "set user, password, SSH keys and IP configuration",
    "VM.Config.Options": "write the ownership marker (tags, description)",
    "VM.PowerMgmt": "start, stop and reboot VMs",
    "VM.Console": "open consoles",
    "Datastore.AllocateSpace": "allocate disks on storages",
    "Datastore.Audit": "read storage capacity for stock",
    "Sys.Audit": "read node capacity and tasks",
}
MARKER_TAG = "vpsbridge"
_MARKER_RE = re.compile(r"^vpsbridge-owner: (?P<owner>\S+)$", re.MULTILINE)
_POWER_ENDPOINT: dict[str, str] = {
    "start": "start",
    "stop": "stop",
    "shutdown": "shutdown",
    "restart": "reboot",
    "reset": "reset",
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def marker_description(owner: str, description: str | None = None) -> str:
    """A VM description carrying the ownership marker (other lines kept)."""
    kept = _MARKER_RE.sub("", description or "").strip()
    line = f"vpsbridge-owner: {owner}"
    return f"{kept}\n{line}" if kept else line


def read_marker(config: Mapping[str, Any]) -> str | None:
    """The owner written into a VM config by :meth:`ProxmoxPlatform.write_marker`, if any."""
    tags = re.split(r"[;, ]+", str(config.get("tags") or ""))
    match = _MARKER_RE.search(str(config.get("description") or ""))
    if match is None or MARKER_TAG not in tags:
        return None
    return match["owner"]


def _tags_with_marker(tags: str | None) -> str:
    items = [t for t in re.split(r"[;, ]+", tags or "") if t]
    if MARKER_TAG not in items:
        items.append(MARKER_TAG)
    return ";".join(items)


def generate_password(length: int = 20) -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.isdigit() for c in value)
            and any(c.isupper() for c in value)
            and any(c.islower() for c in value)
        ):
            return value


class ProxmoxPlatform(Platform):
    SUPPORTS = frozenset(
        str(c)
        for c in (
            Capability.CAPACITY,
            Capability.POWER,
            Capability.SUSPEND,
            Capability.TERMINATE,
            Capability.RESET_PASSWORD,
            Capability.LIVE_STATS,
            Capability.TRAFFIC,
            Capability.CONSOLE,
            Capability.OS_TEMPLATES,
        )
    )

    def _setup(self) -> None:
        token_id = self.credentials.get("token_id")
        secret = self.credentials.get("token_secret")
        combined = self.credentials.get("api_token")
        if combined and not token_id:
            token_id, _, secret = str(combined).rpartition("=")
        s = self.settings
        self.task_timeout = float(s.get("task_timeout", 600))
        self.poll_interval = float(s.get("poll_interval", 1.0))
        self._client: ProxmoxClient | None = None
        if token_id and secret:
            self._client = ProxmoxClient(
                self.url,
                token_id=str(token_id),
                token_secret=str(secret),
                verify=self.verify,
                transport=self.transport,
                recorder=self.recorder,
                node_concurrency=int(s.get("node_concurrency", 4)),
                read_timeout=float(s.get("read_timeout", 60)),
                max_retries=int(s.get("max_retries", 2)),
                retry_wait_initial=float(s.get("retry_wait", 0.25)),
            )
        self._console: ProxmoxClient | None = None

    @property
    def client(self) -> ProxmoxClient:
        """The API client; without a token every call fails as an authentication problem."""
        if self._client is None:
            raise UpstreamAuthError(
                "proxmox: the platform has no API token (credentials token_id and token_secret)",
                client="proxmox",
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._console is not None:
            await self._console.aclose()

    # --- locating VMs ---

    async def vm_resources(self) -> list[dict[str, Any]]:
        data = await self.client.get("/cluster/resources", {"type": "vm"})
        return [r for r in data or [] if isinstance(r, dict) and r.get("type") == "qemu"]

    async def locate(self, vmid: int | str) -> ServerRef | None:
        """Where the VM is now, or ``None`` when the cluster confirms it does not exist."""
        for entry in await self.vm_resources():
            if str(entry.get("vmid")) == str(vmid):
                return ServerRef(external_id=str(vmid), node=str(entry["node"]))
        return None

    async def _resolve(self, ref: ServerRef) -> ServerRef:
        if ref.node:
            return ref
        found = await self.locate(ref.external_id)
        if found is None:
            raise ServerMissing(f"proxmox: VM {ref.external_id} does not exist in the cluster")
        return found

    async def _vm_call(
        self, ref: ServerRef, method: str, suffix: str, params: Mapping[str, Any] | None = None
    ) -> tuple[Any, ServerRef]:
        """Call ``/nodes/{node}/qemu/{vmid}{suffix}``, following the VM if it moved to another node."""
        current = await self._resolve(ref)
        for attempt in range(2):
            path = f"/nodes/{current.node}/qemu/{current.external_id}{suffix}"
            try:
                return await self.client.call(method, path, params), current
            except UpstreamNotFound:
                found = await self.locate(current.external_id)
                if found is None:
                    raise ServerMissing(
                        f"proxmox: VM {current.external_id} does not exist in the cluster"
                    ) from None
                if found.node == current.node or attempt:
                    raise
                current = found
        raise AssertionError("unreachable")  # pragma: no cover

    def _handle(self, upid: Any, kind: str, server: ServerRef | None) -> TaskHandle:
        if not is_upid(upid):
            raise InvalidRequest(f"proxmox: expected a task id for {kind}, got {upid!r}")
        return TaskHandle(id=str(upid), kind=kind, state="running", server=server)

    # --- always available ---

    async def test_connection(self) -> ConnectionReport:
        checks: list[Check] = []
        try:
            version = await self.client.version()
        except UpstreamAuthError as exc:
            checks.append(Check(name="authentication", ok=False, detail=f"the API token was rejected: {exc}"))
            return ConnectionReport.from_checks(checks)
        except UpstreamError as exc:
            checks.append(Check(name="url", ok=False, detail=f"cannot reach the Proxmox API: {exc}"))
            return ConnectionReport.from_checks(checks)
        release = str(version.get("version", ""))
        checks.append(Check(name="url", ok=True, detail=f"Proxmox VE {release}"))
        checks.append(Check(name="authentication", ok=True, detail="API token accepted"))
        major = await self.client.major_version()
        checks.append(
            Check(
                name="version",
                ok=major >= 7,
                detail="supported" if major >= 7 else "Proxmox VE 7 or newer is required",
            )
        )
        granted: set[str] = set()
        try:
            perms = await self.client.get("/access/permissions", {"path": "/"})
            for privs in (perms or {}).values():
                if isinstance(privs, dict):
                    granted.update(k for k, v in privs.items() if v)
        except UpstreamError as exc:
            checks.append(Check(name="permissions", ok=False, detail=f"cannot read permissions: {exc}"))
        else:
            for priv, purpose in REQUIRED_PRIVILEGES.items():
                ok = priv in granted
                detail = purpose if ok else f"grant {priv} on / to the token (needed to {purpose})"
                checks.append(
                    Check(name=f"privilege {priv}", ok=ok, detail=detail, missing_scope=None if ok else priv)
                )
        try:
            nodes = await self.client.get("/nodes")
            online = [n["node"] for n in nodes or [] if n.get("status") == "online"]
            checks.append(
                Check(
                    name="nodes",
                    ok=bool(online),
                    detail=f"{len(online)} of {len(nodes or [])} node(s) online",
                )
            )
            templates = [r for r in await self.vm_resources() if r.get("template")]
            checks.append(
                Check(
                    name="templates",
                    ok=bool(templates),
                    detail=f"{len(templates)} template VM(s)" if templates else "no template VMs found",
                )
            )
        except UpstreamError as exc:
            checks.append(Check(name="nodes", ok=False, detail=str(exc)))
        return ConnectionReport.from_checks(checks, f"Proxmox VE {release}")

    async def vm_config(self, ref: ServerRef, *, current: bool = False) -> dict[str, Any]:
        """The VM config (``current`` = without pending changes), with ``digest``."""
        data, _ = await self._vm_call(ref, "GET", "/config", {"current": current} if current else None)
        return dict(data or {})

    async def vm_status(self, ref: ServerRef) -> dict[str, Any]:
        data, _ = await self._vm_call(ref, "GET", "/status/current")
        return dict(data or {})

    async def server_info(self, server: ServerRef, *, live: bool = False) -> ServerInfo:
        ref = await self._resolve(server)
        config, ref = await self._vm_call(ref, "GET", "/config")
        status: dict[str, Any] = {}
        if live:
            status, ref = await self._vm_call(ref, "GET", "/status/current")
        ipv4: list[str] = []
        ipv6: list[str] = []
        for key, value in sorted(config.items()):
            if re.fullmatch(r"ipconfig\d+", key):
                props = parse_property_string(str(value))
                if "/" in props.get("ip", ""):
                    ipv4.append(props["ip"].split("/")[0])
                if "/" in props.get("ip6", ""):
                    ipv6.append(props["ip6"].split("/")[0])
        disk = system_disk(config)
        disk_bytes = parse_drive(disk, config[disk]).size if disk else None
        memory = parse_property_string(str(config.get("memory", "512")), default_key="current")
        state: PowerState = "unknown"
        if status:
            state = "running" if status.get("status") == "running" else "stopped"
        if config.get("lock") in ("clone", "create"):
            state = "building"
        stats: dict[str, float] = {}
        if status.get("status") == "running":
            stats = {
                "cpu_pct": round(float(status.get("cpu", 0)) * 100, 1),
                "memory_used_mb": round(float(status.get("mem", 0)) / 1024**2, 1),
                "uptime_s": float(status.get("uptime", 0)),
                "net_in_bytes": float(status.get("netin", 0)),
                "net_out_bytes": float(status.get("netout", 0)),
            }
        return ServerInfo(
            ref=ref,
            hostname=config.get("name"),
            name=config.get("name"),
            state=state,
            cpu_cores=int(config.get("cores", 1)) * int(config.get("sockets", 1)),
            memory_mb=int(memory.get("current", "512")),
            disk_gb=disk_bytes // 1024**3 if disk_bytes else None,
            ipv4=tuple(ipv4),
            ipv6=tuple(ipv6),
            location=ref.node,
            live=live,
            stats=stats,
            raw={"config": config, "status": status},
        )

    async def task_status(self, task: TaskHandle) -> TaskHandle:
        status = await self.client.task_status(task.id)
        if status.get("status") != "stopped":
            return task.model_copy(update={"state": "running"})
        exitstatus = str(status.get("exitstatus") or "")
        if exit_ok(exitstatus):
            return task.model_copy(update={"state": "succeeded", "progress": 100, "error": None})
        return task.model_copy(update={"state": "failed", "error": exitstatus or "task failed"})

    async def wait(self, task: TaskHandle | None, *, timeout: float | None = None) -> TaskHandle | None:
        """Wait for a task (``None`` passes through); raises ``TaskFailed`` / ``TaskTimeout``."""
        if task is None:
            return None
        await self.client.wait_task(
            task.id, timeout=timeout or self.task_timeout, interval=self.poll_interval
        )
        return task.model_copy(update={"state": "succeeded", "progress": 100})

    # --- capacity ---

    async def capacity(self, placement: Mapping[str, Any]) -> CapacityReport:
        """Free CPU/RAM per node (allocated VM sizes against ``maxcpu``/``maxmem`` x overcommit) and
        free space on the placement's storage (``storage`` key, else the platform setting)."""
        cpu_oc = float(placement.get("cpu_overcommit", self.settings.get("cpu_overcommit", 1.0)))
        ram_oc = float(placement.get("ram_overcommit", self.settings.get("ram_overcommit", 1.0)))
        storage_id = placement.get("storage", self.settings.get("storage"))
        wanted = placement.get("nodes") or ([placement["node"]] if placement.get("node") else None)
        resources = await self.client.get("/cluster/resources")
        nodes = [r for r in resources if r.get("type") == "node"]
        vms = [r for r in resources if r.get("type") == "qemu" and not r.get("template")]
        report: list[NodeCapacity] = []
        for entry in sorted(nodes, key=lambda n: str(n["node"])):
            name = str(entry["node"])
            if wanted and name not in wanted:
                continue
            online = entry.get("status") == "online"
            mine = [v for v in vms if v.get("node") == name]
            cpus = int(int(entry.get("maxcpu", 0)) * cpu_oc)
            mem_mb = int(int(entry.get("maxmem", 0)) * ram_oc) // 1024**2
            used_cpu = sum(int(v.get("maxcpu", 0)) for v in mine)
            used_mem = sum(int(v.get("maxmem", 0)) for v in mine) // 1024**2
            disk_total = disk_free = 0
            if online:
                storages = await self.client.get(f"/nodes/{name}/storage", {"content": "images"})
                for st in storages or []:
                    if storage_id and st.get("storage") != storage_id:
                        continue
                    if not storage_id and st.get("shared"):
                        continue
                    disk_total += int(st.get("total", 0))
                    disk_free += int(st.get("avail", 0))
            report.append(
                NodeCapacity(
                    name=name,
                    enabled=online,
                    cpu_cores=cpus,
                    cpu_cores_free=max(0, cpus - used_cpu) if online else 0,
                    memory_mb=mem_mb,
                    memory_mb_free=max(0, mem_mb - used_mem) if online else 0,
                    disk_gb=disk_total // 1024**3,
                    disk_gb_free=disk_free // 1024**3,
                    servers=len(mine),
                )
            )
        return CapacityReport(placement=dict(placement), nodes=tuple(report))

    # --- VMIDs and cloning ---

    async def next_vmid(self) -> int:
        return int(await self.client.get("/cluster/nextid"))

    async def vmid_free(self, vmid: int) -> bool:
        """Whether Proxmox considers ``vmid`` free right now (no reservation: a race is still possible)."""
        try:
            await self.client.get("/cluster/nextid", {"vmid": vmid})
        except VmidTaken:
            return False
        return True

    async def clone(
        self,
        template: int | str,
        newid: int,
        *,
        node: str | None = None,
        name: str | None = None,
        target: str | None = None,
        storage: str | None = None,
        full: bool = True,
        description: str | None = None,
        pool: str | None = None,
        format: str | None = None,
    ) -> TaskHandle:
        """Clone a template to ``newid``; ``VmidTaken`` when the id was taken meanwhile (retry another).

        ``target`` works only when every template disk is on shared storage; otherwise clone on the
        template's node and :meth:`migrate` afterwards.
        """
        source = await self._resolve(ServerRef(external_id=str(template), node=node))
        params = {
            "newid": newid,
            "full": full,
            "name": name,
            "target": target,
            "storage": storage,
            "description": description,
            "pool": pool,
            "format": format,
        }
        upid = await self.client.post(f"/nodes/{source.node}/qemu/{source.external_id}/clone", params)
        return self._handle(upid, "clone", ServerRef(external_id=str(newid), node=target or source.node))

    async def migrate(
        self, server: ServerRef, target: str, *, targetstorage: str | None = None, online: bool = False
    ) -> TaskHandle:
        """Move the VM to ``target`` (offline unless ``online``); local disks go to ``targetstorage``."""
        params = {"target": target, "targetstorage": targetstorage, "online": online or None}
        if online:
            params["with-local-disks"] = True
        upid, ref = await self._vm_call(server, "POST", "/migrate", params)
        return self._handle(upid, "migrate", ServerRef(external_id=ref.external_id, node=target))

    # --- configuration ---

    async def update_config(
        self,
        server: ServerRef,
        params: Mapping[str, Any],
        *,
        delete: Sequence[str] = (),
        digest: str | None = None,
        sync: bool = False,
    ) -> TaskHandle | None:
        """Change VM config keys; ``sync`` uses PUT (no task), otherwise POST returns a task."""
        body = {k: v for k, v in params.items() if v is not None}
        if delete:
            body["delete"] = ",".join(delete)
        if digest:
            body["digest"] = digest
        if not body:
            return None
        result, ref = await self._vm_call(server, "PUT" if sync else "POST", "/config", body)
        if sync or result is None:
            return None
        return self._handle(result, "config", ref)

    async def set_resources(
        self, server: ServerRef, *, cores: int | None = None, memory_mb: int | None = None
    ) -> TaskHandle | None:
        """CPU cores (one socket) and RAM; unchanged values are not sent."""
        config = await self.vm_config(server)
        params: dict[str, Any] = {}
        if cores is not None and (int(config.get("cores", 1)), int(config.get("sockets", 1))) != (cores, 1):
            params.update({"cores": cores, "sockets": 1})
        current_mem = parse_property_string(str(config.get("memory", "512")), default_key="current")
        if memory_mb is not None and int(current_mem.get("current", "512")) != memory_mb:
            params["memory"] = memory_mb
        return await self.update_config(server, params)

    async def system_disk(self, server: ServerRef) -> Drive:
        config = await self.vm_config(server, current=True)
        key = system_disk(config)
        if key is None:
            raise InvalidRequest(f"proxmox: VM {server.external_id} has no system disk")
        return parse_drive(key, config[key])

    async def resize_disk(self, server: ServerRef, disk: str, size_gb: int) -> TaskHandle | None:
        """Grow ``disk`` to ``size_gb`` GiB; ``None`` when it already has that size (no call).

        Shrinking is refused here (Proxmox would fail the task). On PVE 8+ the answer is a task, on
        older versions the resize is done when the call returns.
        """
        config = await self.vm_config(server, current=True)
        if disk not in config:
            raise InvalidRequest(f"proxmox: VM {server.external_id} has no disk {disk}")
        current = parse_drive(disk, config[disk]).size or 0
        wanted = gib(size_gb)
        if wanted < current:
            raise InvalidRequest(
                f"proxmox: disks are never shrunk ({disk} is {current / 1024**3:g} GB, asked {size_gb} GB)"
            )
        if wanted == current:
            return None
        result, ref = await self._vm_call(server, "PUT", "/resize", {"disk": disk, "size": f"{size_gb}G"})
        return self._handle(result, "resize", ref) if result else None

    async def set_disk_io(
        self,
        server: ServerRef,
        disk: str,
        *,
        mbps_rd: float = 0,
        mbps_wr: float = 0,
        iops_rd: int = 0,
        iops_wr: int = 0,
    ) -> TaskHandle | None:
        """Set the four I/O limits (0 = unlimited), re-sending the whole drive string.

        No call when nothing changes - in particular when all four are 0 and none is set.
        """
        config = await self.vm_config(server, current=True)
        if disk not in config:
            raise InvalidRequest(f"proxmox: VM {server.external_id} has no disk {disk}")
        drive = parse_drive(disk, config[disk])
        wanted = {"mbps_rd": mbps_rd, "mbps_wr": mbps_wr, "iops_rd": iops_rd, "iops_wr": iops_wr}
        wanted_set = {k: float(v) for k, v in wanted.items() if v}
        if drive.io_limits() == wanted_set:
            return None
        updated = drive.with_options(**{k: (v if v else None) for k, v in wanted.items()})
        return await self.update_config(server, {disk: updated.value()})

    async def add_disk(
        self,
        server: ServerRef,
        storage: str,
        size_gb: int,
        *,
        bus: str = "scsi",
        format: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> tuple[str, TaskHandle | None]:
        """Attach a new disk of ``size_gb`` GiB on ``storage``; returns its drive key and the task."""
        config = await self.vm_config(server)
        key = free_drive_key(config, bus)
        opts: dict[str, Any] = {"file": f"{storage}:{size_gb}", **(options or {})}
        if format:
            opts["format"] = format
        value = format_property_string(opts, default_key="file")
        return key, await self.update_config(server, {key: value})

    async def remove_disk(self, server: ServerRef, disk: str) -> TaskHandle | None:
        """Detach ``disk`` and destroy its volume (``delete`` then ``unusedN``), as Proxmox requires."""
        await self.wait(await self.update_config(server, {}, delete=[disk]))
        config = await self.vm_config(server, current=True)
        unused = [k for k in config if re.fullmatch(r"unused\d+", k)]
        if not unused:
            return None
        return await self.update_config(server, {}, delete=unused)

    async def reassign_disk(
        self, server: ServerRef, disk: str, target_vmid: int | str, target_disk: str
    ) -> TaskHandle:
        """Hand ``disk`` to another VM on the same node as ``target_disk`` (``move_disk``, PVE 7.3+).

        The volume is renamed to the target's id and keeps its data; ``target_disk`` must be free.
        """
        params = {"disk": disk, "target-vmid": int(target_vmid), "target-disk": target_disk}
        upid, ref = await self._vm_call(server, "POST", "/move_disk", params)
        return self._handle(upid, "move_disk", ref)

    async def set_network(
        self,
        server: ServerRef,
        *,
        index: int = 0,
        bridge: str = "vmbr0",
        vlan: int | None = None,
        rate_mbps: float | None = None,
        firewall: bool = True,
        model: str = "virtio",
    ) -> TaskHandle | None:
        """Configure ``net{index}`` keeping its MAC address; ``rate_mbps`` is Mbit/s (Proxmox: MB/s)."""
        config = await self.vm_config(server)
        key = f"net{index}"
        existing = parse_property_string(str(config.get(key, "")))
        mac = next((v for k, v in existing.items() if k == model), None)
        parts = [f"{model}={mac}" if mac else model, f"bridge={bridge}", f"firewall={1 if firewall else 0}"]
        if vlan:
            parts.append(f"tag={vlan}")
        if rate_mbps:
            parts.append(f"rate={round(rate_mbps / 8, 3):g}")
        value = ",".join(parts)
        if config.get(key) == value:
            return None
        return await self.update_config(server, {key: value})

    async def set_cloudinit(
        self,
        server: ServerRef,
        *,
        user: str | None = None,
        password: str | None = None,
        ssh_keys: Sequence[str] | None = None,
        ipconfig: Mapping[int, str] | None = None,
        nameservers: Sequence[str] | None = None,
        searchdomain: str | None = None,
    ) -> TaskHandle | None:
        """Cloud-init user, password, SSH keys, per-interface IP config and name servers.

        ``ipconfig`` maps interface index to Proxmox's syntax (``ip=192.0.2.10/24,gw=192.0.2.1``).
        """
        params: dict[str, Any] = {"ciuser": user, "cipassword": password, "searchdomain": searchdomain}
        if ssh_keys:
            params["sshkeys"] = encode_sshkeys(ssh_keys)
        if nameservers:
            params["nameserver"] = " ".join(nameservers)
        for index, value in (ipconfig or {}).items():
            params[f"ipconfig{index}"] = value
        if password:
            self.client.add_secret(password)
        return await self.update_config(server, params)

    async def ssh_keys(self, server: ServerRef) -> list[str]:
        return decode_sshkeys((await self.vm_config(server)).get("sshkeys"))

    # --- ownership marker ---

    async def write_marker(self, server: ServerRef, owner: str) -> TaskHandle | None:
        """Record who owns this VM (tag ``vpsbridge`` + a description line) before anything else."""
        if not re.fullmatch(r"[A-Za-z0-9_.:/@+-]+", owner):
            raise ValueError(f"ownership marker must be a single token: {owner!r}")
        config = await self.vm_config(server)
        return await self.update_config(
            server,
            {
                "description": marker_description(owner, config.get("description")),
                "tags": _tags_with_marker(config.get("tags")),
            },
            sync=True,
        )

    async def owner(self, server: ServerRef) -> str | None:
        return read_marker(await self.vm_config(server))

    async def check_owner(self, server: ServerRef, owner: str) -> None:
        """Raise :class:`NotOwned` unless the VM carries ``owner``'s marker."""
        found = await self.owner(server)
        if found != owner:
            raise NotOwned(
                f"proxmox: VM {server.external_id} is not ours (marker {found!r}, expected {owner!r}); "
                "refusing to touch it",
                client="proxmox",
            )

    # --- firewall ---

    async def firewall_options(self, server: ServerRef) -> dict[str, Any]:
        data, _ = await self._vm_call(server, "GET", "/firewall/options")
        return dict(data or {})

    async def set_firewall_options(self, server: ServerRef, **options: Any) -> None:
        """E.g. ``enable=True, ipfilter=True, policy_in="ACCEPT"``; unchanged values are not sent."""
        current = await self.firewall_options(server)
        changed = {
            k: v
            for k, v in options.items()
            if v is not None and str(current.get(k)) != (str(int(v)) if isinstance(v, bool) else str(v))
        }
        if changed:
            await self._vm_call(server, "PUT", "/firewall/options", changed)

    async def ipset(self, server: ServerRef, name: str) -> list[str] | None:
        """The CIDRs of an IP set, or ``None`` when the set does not exist."""
        sets, ref = await self._vm_call(server, "GET", "/firewall/ipset")
        if name not in {s.get("name") for s in sets or []}:
            return None
        entries, _ = await self._vm_call(ref, "GET", f"/firewall/ipset/{name}")
        return [str(e["cidr"]) for e in entries or []]

    async def sync_ipset(
        self, server: ServerRef, name: str, cidrs: Sequence[str], *, comment: str | None = None
    ) -> None:
        """Make IP set ``name`` contain exactly ``cidrs`` (e.g. ``ipfilter-net0`` for anti-spoofing)."""
        current = await self.ipset(server, name)
        if current is None:
            await self._vm_call(server, "POST", "/firewall/ipset", {"name": name, "comment": comment})
            current = []
        wanted = list(dict.fromkeys(cidrs))
        for cidr in wanted:
            if cidr not in current:
                await self._vm_call(server, "POST", f"/firewall/ipset/{name}", {"cidr": cidr})
        for cidr in current:
            if cidr not in wanted:
                quoted = cidr.replace("/", "%2F")
                await self._vm_call(server, "DELETE", f"/firewall/ipset/{name}/{quoted}")

    # --- power ---

    async def power(self, server: ServerRef, action: PowerAction) -> TaskHandle:
        endpoint = _POWER_ENDPOINT[action]
        upid, ref = await self._vm_call(server, "POST", f"/status/{endpoint}")
        return self._handle(upid, f"power:{action}", ref)

    async def shutdown(
        self, server: ServerRef, *, timeout: int = 120, force_stop: bool = False
    ) -> TaskHandle:
        """ACPI shutdown; fails after ``timeout`` s if the guest ignores it, unless ``force_stop``."""
        params = {"timeout": timeout, "forceStop": force_stop or None}
        upid, ref = await self._vm_call(server, "POST", "/status/shutdown", params)
        return self._handle(upid, "power:shutdown", ref)

    async def stop(self, server: ServerRef, *, overrule_shutdown: bool = True) -> TaskHandle:
        """Hard stop; ``overrule_shutdown`` aborts a shutdown task that is still waiting for the guest."""
        upid, ref = await self._vm_call(
            server, "POST", "/status/stop", {"overrule-shutdown": overrule_shutdown or None}
        )
        return self._handle(upid, "power:stop", ref)

    async def suspend(self, server: ServerRef) -> TaskHandle:
        return await self.stop(server)

    async def unsuspend(self, server: ServerRef) -> TaskHandle:
        return await self.power(server, "start")

    async def destroy(self, server: ServerRef, *, owner: str | None = None, purge: bool = True) -> TaskHandle:
        """Destroy the VM and its disks (``purge`` also drops it from backup/HA/replication jobs).

        With ``owner`` the ownership marker is checked first and :class:`NotOwned` raised on mismatch.
        """
        if owner is not None:
            await self.check_owner(server, owner)
        params = {"purge": purge or None, "destroy-unreferenced-disks": purge or None}
        upid, ref = await self._vm_call(server, "DELETE", "", params)
        return self._handle(upid, "destroy", ref)

    async def terminate(self, server: ServerRef) -> TaskHandle:
        return await self.destroy(server)

    async def reset_password(self, server: ServerRef, password: str | None = None) -> PasswordReset:
        """Set a new cloud-init password; a running VM is rebooted so cloud-init applies it."""
        new_password = password or generate_password()
        config = await self.vm_config(server)
        user = str(config.get("ciuser") or "root")
        await self.wait(await self.set_cloudinit(server, password=new_password))
        status = await self.vm_status(server)
        task = await self.power(server, "restart") if status.get("status") == "running" else None
        return PasswordReset(username=user, password=new_password, task=task)

    # --- rebuild ---

    @staticmethod
    def preserved_settings(config: Mapping[str, Any]) -> dict[str, Any]:
        """What a rebuild from a template keeps: sizes, network (MACs), IP config, marker, cloud-init.

        For re-creating a VM from a template under the same VMID (apply with :meth:`restore_settings`,
        then grow the system disk back). The rebuild workflow itself no longer re-creates the VM: it
        swaps only the system disk (:meth:`reassign_disk`), so the additional disk survives.
        """
        keep = (
            "cores",
            "sockets",
            "memory",
            "name",
            "description",
            "tags",
            "ciuser",
            "sshkeys",
            "nameserver",
            "searchdomain",
            "onboot",
        )
        out: dict[str, Any] = {k: config[k] for k in keep if k in config}
        for key, value in config.items():
            if re.fullmatch(r"(net|ipconfig)\d+", key):
                out[key] = value
        disk = system_disk(config)
        if disk:
            drive = parse_drive(disk, config[disk])
            out["_system_disk_gb"] = (drive.size or 0) // 1024**3
            out["_io_limits"] = drive.io_limits()
        return out

    async def restore_settings(self, server: ServerRef, preserved: Mapping[str, Any]) -> TaskHandle | None:
        params = {k: v for k, v in preserved.items() if not k.startswith("_")}
        return await self.update_config(server, params)

    # --- console, statistics, templates ---

    def _console_client(self) -> ProxmoxClient:
        if self._console is None:
            user = self.credentials.get("console_user")
            password = self.credentials.get("console_password")
            if not user or not password:
                return self.client
            self._console = ProxmoxClient(
                self.url,
                username=str(user),
                password=str(password),
                verify=self.verify,
                transport=self.transport,
                recorder=self.recorder,
                name="proxmox-console",
            )
        return self._console

    async def console(self, server: ServerRef, *, kind: str = "novnc") -> ConsoleTicket:
        """A vncproxy (``novnc``) or termproxy (``xterm``) ticket, as the dedicated console user if set."""
        ref = await self._resolve(server)
        client = self._console_client()
        endpoint = "termproxy" if kind == "xterm" else "vncproxy"
        params = {"websocket": True} if endpoint == "vncproxy" else None
        data = await client.post(f"/nodes/{ref.node}/qemu/{ref.external_id}/{endpoint}", params)
        port = int(data["port"])
        base = self.url.rstrip("/")
        ticket = str(data["ticket"])
        client.add_secret(ticket)
        ws = (
            f"{base}/api2/json/nodes/{ref.node}/qemu/{ref.external_id}/vncwebsocket"
            f"?port={port}&vncticket={ticket}"
        )
        return ConsoleTicket(
            kind="xterm" if kind == "xterm" else "novnc",
            url=ws,
            host=httpx2.URL(base).host,
            port=port,
            ticket=ticket,
            # Without generate-password, PVE's VNC server takes the vncticket as the password.
            password=ticket,
            expires_at=_utcnow() + dt.timedelta(seconds=40),
        )

    async def console_stream(self, ticket: ConsoleTicket) -> ByteStream:
        """``vncwebsocket`` as the user who asked for the ticket (PVE binds it to that user and port)."""
        if ticket.kind != "novnc" or not ticket.url:
            return await super().console_stream(ticket)
        client = self._console_client()
        client.add_secret(ticket.ticket)
        return await client.open_websocket(ticket.url)

    async def rrd(
        self, server: ServerRef, timeframe: str = "day", cf: str = "AVERAGE"
    ) -> list[dict[str, Any]]:
        data, _ = await self._vm_call(server, "GET", "/rrddata", {"timeframe": timeframe, "cf": cf})
        return [p for p in data or [] if isinstance(p, dict)]

    async def traffic(self, server: ServerRef) -> TrafficReport:
        """Estimated traffic per calendar month (this one and up to 11 before it) from RRD averages.

        Proxmox keeps no traffic accounting, only averaged rates (bytes/s) per step. This month uses
        the ``month`` timeframe (30 min rows on PVE 9, 12 h before), earlier months the ``year``
        timeframe (6 h rows on PVE 9, one week before); each is rate x step, split where a row
        straddles a month boundary. A month the series reaches only partly is scaled up when the
        guest existed before the series began. The report is marked ``estimated``.
        """
        now = _utcnow()
        ref = await self._resolve(server)
        coarse = _rate_samples(await self.rrd(ref, "year"))
        fine = _rate_samples(await self.rrd(ref, "month"))
        estimates = estimate_months(coarse, fine, calendar_months(now, TRAFFIC_HISTORY_MONTHS))
        months = tuple(
            TrafficMonth(
                period_start=window.start,
                period_end=add_months(window.start, 1),
                rx_bytes=int(total.rx),
                tx_bytes=int(total.tx),
            )
            for window, total in estimates
        )
        current = months[0]
        return TrafficReport(
            ref=ref,
            period_start=current.period_start,
            period_end=current.period_end,
            rx_bytes=current.rx_bytes,
            tx_bytes=current.tx_bytes,
            months=months,
            estimated=True,
        )

    async def os_templates(self, plan: Mapping[str, Any] | None = None) -> list[OsTemplate]:
        """Template VMs in the cluster; ``plan["os_templates"]`` (VMIDs or names) narrows the list."""
        allowed = {str(x) for x in (plan or {}).get("os_templates") or []}
        out: list[OsTemplate] = []
        for entry in sorted(await self.vm_resources(), key=lambda e: int(e.get("vmid", 0))):
            if not entry.get("template"):
                continue
            vmid, name = str(entry["vmid"]), str(entry.get("name") or entry["vmid"])
            if allowed and vmid not in allowed and name not in allowed:
                continue
            family, _, version = name.partition("-")
            out.append(
                OsTemplate(
                    id=vmid,
                    name=name,
                    family=family or None,
                    version=version or None,
                    features=("cloud-init",),
                )
            )
        return out

    async def template_node(self, template: int | str) -> str:
        ref = await self._resolve(ServerRef(external_id=str(template)))
        assert ref.node is not None
        return ref.node


def _rate(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _rate_samples(points: list[dict[str, Any]]) -> list[RateSample]:
    """``rrddata`` rows as rate samples; rows without values (before the VM existed) stay empty."""
    return samples_with_steps(
        (float(p["time"]), _rate(p.get("netin")), _rate(p.get("netout"))) for p in points if "time" in p
    )


async def wait_unlocked(
    platform: ProxmoxPlatform, server: ServerRef, *, timeout: float = 60.0, interval: float = 1.0
) -> dict[str, Any]:
    """Wait until the VM config has no ``lock`` (after clone/migrate tasks) and return the config."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        config = await platform.vm_config(server)
        if not config.get("lock"):
            return config
        if asyncio.get_running_loop().time() >= deadline:
            raise ServerLocked(
                f"proxmox: VM {server.external_id} still locked ({config['lock']}) after {timeout:g}s",
                client="proxmox",
            )
        await asyncio.sleep(interval)
