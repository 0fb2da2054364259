"""The in-memory "cloud" behind the dummy driver: nodes, servers, tasks, templates and backups.

One :class:`DummyCloud` exists per platform URL in a process, so every driver instance built for
``dummy://demo`` (the registry builds a new one per use) sees the same servers - exactly as two
drivers for one VirtFusion panel would. Operations are synchronous dict updates (atomic under
asyncio); only their *effects* are delayed: a task completes ``task_seconds`` after it was started
and its effect (server built, powered off, deleted ...) is applied when anyone next looks.

It behaves like a real control plane where it matters for the code above it: capacity is reserved
on create and released on terminate, a server with a running task is locked, a suspended server
refuses power actions, unknown ids are confirmed missing, and faults can be injected per operation.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vpsbridge.platforms.errors import InsufficientCapacity, InvalidRequest, ServerLocked, ServerMissing
from vpsbridge.platforms.models import (
    Backup,
    CapacityReport,
    NodeCapacity,
    OsTemplate,
    PowerState,
    ServerRef,
    ServerSpec,
    TaskHandle,
    TaskState,
)

DEFAULT_NODE = {"cpu_cores": 32, "memory_mb": 65536, "disk_gb": 1000}

TEMPLATES: tuple[OsTemplate, ...] = (
    OsTemplate(id="debian-12", name="Debian 12 (Bookworm)", family="debian", version="12"),
    OsTemplate(id="debian-11", name="Debian 11 (Bullseye)", family="debian", version="11"),
    OsTemplate(id="ubuntu-24.04", name="Ubuntu 24.04 LTS", family="ubuntu", version="24.04"),
    OsTemplate(id="ubuntu-22.04", name="Ubuntu 22.04 LTS", family="ubuntu", version="22.04"),
    OsTemplate(id="almalinux-9", name="AlmaLinux 9", family="almalinux", version="9"),
    OsTemplate(id="rocky-9", name="Rocky Linux 9", family="rocky", version="9"),
    OsTemplate(
        id="windows-2022",
        name="Windows Server 2022",
        family="windows",
        version="2022",
        features=("no_ssh_keys",),
    ),
)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class DummyNode:
    name: str
    cpu_cores: int
    memory_mb: int
    disk_gb: int
    max_servers: int | None = None
    enabled: bool = True


@dataclass
class DummyServer:
    id: int
    node: str
    hostname: str
    name: str | None
    cpu_cores: int
    memory_mb: int
    disk_gb: int
    traffic_gb: int | None
    owner: str | None
    ipv4: list[str]
    ipv6: list[str]
    state: PowerState = "building"
    suspended: bool = False
    os_template: str | None = None
    password: str | None = None
    rx_bytes: int = 0
    tx_bytes: int = 0
    created_at: dt.datetime = field(default_factory=_utcnow)
    backups: list[Backup] = field(default_factory=list)
    #: Power state to return to on unsuspend.
    resume_state: PowerState = "stopped"

    @property
    def ref(self) -> ServerRef:
        return ServerRef(external_id=str(self.id), node=self.node)


@dataclass
class DummyTask:
    id: str
    kind: str
    server_id: int | None
    done_at: float
    apply: Callable[[], dict[str, Any] | None] | None = None
    state: TaskState = "running"
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


class DummyCloud:
    """In-memory control plane; see the module docstring."""

    _clouds: ClassVar[dict[str, DummyCloud]] = {}

    def __init__(
        self,
        nodes: list[DummyNode] | None = None,
        *,
        task_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nodes: dict[str, DummyNode] = {
            n.name: n
            for n in nodes or [DummyNode(name=f"node-{i}", **DEFAULT_NODE) for i in (1, 2)]  # type: ignore[arg-type]
        }
        self.task_seconds = task_seconds
        self.clock = clock
        self.servers: dict[int, DummyServer] = {}
        self.tasks: dict[str, DummyTask] = {}
        self._ids = itertools.count(101)
        self._task_ids = itertools.count(1)
        self._v4 = ipaddress.ip_network("192.0.2.0/24").hosts()
        self._v6 = (ipaddress.ip_network("2001:db8::/64")[i] for i in itertools.count(0x100))
        self._faults: dict[str, list[Exception]] = {}
        self.calls: list[str] = []

    # --- one cloud per URL ------------------------------------------------------------------------

    @classmethod
    def for_url(cls, url: str, settings: Mapping[str, Any] | None = None) -> DummyCloud:
        cloud = cls._clouds.get(url)
        if cloud is None:
            cloud = cls.from_settings(settings or {})
            cls._clouds[url] = cloud
        return cloud

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> DummyCloud:
        nodes: list[DummyNode] = []
        for entry in settings.get("nodes") or []:
            if isinstance(entry, str):
                nodes.append(DummyNode(name=entry, **DEFAULT_NODE))  # type: ignore[arg-type]
            else:
                nodes.append(DummyNode(**{**DEFAULT_NODE, **dict(entry)}))
        return cls(nodes or None, task_seconds=float(settings.get("task_seconds", 2.0)))

    @classmethod
    def reset(cls, url: str | None = None) -> None:
        """Forget one cloud (or all): the next driver for that URL starts from an empty platform."""
        if url is None:
            cls._clouds.clear()
        else:
            cls._clouds.pop(url, None)

    # --- fault injection for tests ------------------------------------------------------------------

    def inject_fault(self, operation: str, error: Exception, times: int = 1) -> None:
        """Make the next ``times`` calls of ``operation`` raise ``error`` (e.g. an UpstreamUnavailable)."""
        self._faults.setdefault(operation, []).extend([error] * times)

    def enter(self, operation: str) -> None:
        """Called at the start of every driver operation: records it, raises injected faults."""
        self.calls.append(operation)
        pending = self._faults.get(operation)
        if pending:
            raise pending.pop(0)
        self.advance()

    # --- tasks -------------------------------------------------------------------------------------

    def advance(self) -> None:
        """Apply the effects of every task whose time has come, oldest first."""
        now = self.clock()
        for task in sorted(self.tasks.values(), key=lambda t: t.done_at):
            if task.state == "running" and task.done_at <= now:
                try:
                    task.result = (task.apply() if task.apply else None) or {}
                    task.state = "succeeded"
                except Exception as exc:
                    task.state, task.error = "failed", str(exc)

    def start_task(
        self, kind: str, server: DummyServer | None, apply: Callable[[], dict[str, Any] | None] | None
    ) -> TaskHandle:
        task = DummyTask(
            id=f"task-{next(self._task_ids)}",
            kind=kind,
            server_id=server.id if server else None,
            done_at=self.clock() + self.task_seconds,
            apply=apply,
        )
        self.tasks[task.id] = task
        return self.handle(task)

    def handle(self, task: DummyTask) -> TaskHandle:
        server = self.servers.get(task.server_id) if task.server_id is not None else None
        ref = (
            server.ref if server else (ServerRef(external_id=str(task.server_id)) if task.server_id else None)
        )
        if task.state == "succeeded":
            progress = 100
        else:
            remaining = max(0.0, task.done_at - self.clock())
            progress = int(100 * (1 - remaining / self.task_seconds)) if self.task_seconds > 0 else 99
        return TaskHandle(
            id=task.id,
            kind=task.kind,
            state=task.state,
            server=ref,
            progress=min(progress, 100),
            error=task.error,
            result=task.result,
        )

    def task(self, task_id: str) -> DummyTask:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise ServerMissing(f"dummy: no task {task_id!r}", status=404) from None

    def busy(self, server: DummyServer) -> bool:
        return any(t.server_id == server.id and t.state == "running" for t in self.tasks.values())

    # --- servers -----------------------------------------------------------------------------------

    def server(self, ref: ServerRef, *, lock: bool = False) -> DummyServer:
        try:
            server = self.servers[int(ref.external_id)]
        except (KeyError, ValueError):
            raise ServerMissing(f"dummy: server {ref.external_id} not found", status=404) from None
        if lock and self.busy(server):
            raise ServerLocked(f"dummy: server {server.id} is locked by a running task", status=409)
        return server

    def used(self, node: str) -> tuple[int, int, int, int]:
        on_node = [s for s in self.servers.values() if s.node == node]
        return (
            sum(s.cpu_cores for s in on_node),
            sum(s.memory_mb for s in on_node),
            sum(s.disk_gb for s in on_node),
            len(on_node),
        )

    def capacity(self, placement: Mapping[str, Any]) -> CapacityReport:
        wanted = placement.get("node") or placement.get("nodes")
        names = [wanted] if isinstance(wanted, str) else list(wanted or self.nodes)
        reports = []
        for name in names:
            node = self.nodes.get(name)
            if node is None:
                continue
            cpu, mem, disk, count = self.used(name)
            reports.append(
                NodeCapacity(
                    name=name,
                    enabled=node.enabled,
                    cpu_cores=node.cpu_cores,
                    cpu_cores_free=max(0, node.cpu_cores - cpu),
                    memory_mb=node.memory_mb,
                    memory_mb_free=max(0, node.memory_mb - mem),
                    disk_gb=node.disk_gb,
                    disk_gb_free=max(0, node.disk_gb - disk),
                    servers=count,
                    max_servers=node.max_servers,
                )
            )
        return CapacityReport(placement=dict(placement), nodes=tuple(reports))

    def _fits(self, node: DummyNode, cpu: int, mem: int, disk: int, *, extra_server: bool = True) -> bool:
        used_cpu, used_mem, used_disk, count = self.used(node.name)
        if node.max_servers is not None and extra_server and count >= node.max_servers:
            return False
        return (
            node.enabled
            and used_cpu + cpu <= node.cpu_cores
            and used_mem + mem <= node.memory_mb
            and used_disk + disk <= node.disk_gb
        )

    def choose_node(self, spec: ServerSpec) -> DummyNode:
        wanted = spec.placement.get("node") or spec.placement.get("nodes")
        names = [wanted] if isinstance(wanted, str) else list(wanted or self.nodes)
        unknown = [n for n in names if n not in self.nodes]
        if unknown:
            raise InvalidRequest(f"dummy: unknown node(s) {', '.join(unknown)}", status=422)
        fitting = [
            self.nodes[n]
            for n in names
            if self._fits(self.nodes[n], spec.cpu_cores, spec.memory_mb, spec.disk_gb)
        ]
        if not fitting:
            raise InsufficientCapacity(
                f"dummy: no node in {', '.join(names)} has {spec.cpu_cores} cores, "
                f"{spec.memory_mb} MB and {spec.disk_gb} GB free",
                status=422,
            )
        return max(fitting, key=lambda n: n.memory_mb - self.used(n.name)[1])

    def new_server(self, spec: ServerSpec) -> DummyServer:
        node = self.choose_node(spec)
        server = DummyServer(
            id=next(self._ids),
            node=node.name,
            hostname=spec.hostname,
            name=spec.name,
            cpu_cores=spec.cpu_cores,
            memory_mb=spec.memory_mb,
            disk_gb=spec.disk_gb,
            traffic_gb=spec.traffic_gb,
            owner=spec.owner,
            ipv4=[str(next(self._v4)) for _ in range(spec.ipv4)],
            ipv6=[str(next(self._v6)) for _ in range(spec.ipv6)],
        )
        self.servers[server.id] = server
        return server

    def resize_fits(self, server: DummyServer, spec: ServerSpec) -> bool:
        node = self.nodes[server.node]
        return self._fits(
            node,
            spec.cpu_cores - server.cpu_cores,
            spec.memory_mb - server.memory_mb,
            spec.disk_gb - server.disk_gb,
            extra_server=False,
        )

    @staticmethod
    def generate_password() -> str:
        return secrets.token_urlsafe(12)

    def template(self, template_id: str) -> OsTemplate:
        for template in TEMPLATES:
            if template.id == template_id:
                return template
        raise InvalidRequest(f"dummy: unknown OS template {template_id!r}", status=422)
