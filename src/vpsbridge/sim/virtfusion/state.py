"""The VirtFusion simulator's world: hypervisor groups, hypervisors, packages, templates, users, servers.

State is plain Python objects mutated by the request handlers in :mod:`.app`. Capacity is never
stored twice: what a hypervisor has allocated is always the sum over the servers placed on it, so
creating a server consumes memory, cores, storage and IPv4 addresses and deleting it frees them
without bookkeeping that could drift. Time is a monotonic clock multiplied by ``time_scale`` so
tests can run a two-second build in milliseconds; queue tasks finish lazily when a request looks.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class SimError(Exception):
    """An API error answer: ``status`` plus the body in the spec's shapes (``msg`` or ``errors[]``)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"errors": self.errors} if self.errors is not None else {"msg": self.message}


def iso(when: dt.datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class StoragePool:
    id: int
    name: str
    storage_type: int
    max_gb: int
    enabled: bool = True


@dataclass
class Hypervisor:
    id: int
    name: str
    group_id: int
    ip: str
    memory_mb: int
    cpu_cores: int
    storage_gb: int
    #: The IPv4 addresses this hypervisor can hand out (documentation ranges only).
    ipv4_pool: list[str]
    ipv6_prefix: str
    other_storage: list[StoragePool] = field(default_factory=list)
    local_storage_type: int = 1
    max_servers: int = 0
    enabled: bool = True
    prohibit: bool = False
    commissioned: bool = True
    maintenance: bool = False


@dataclass
class Group:
    id: int
    name: str
    description: str = ""
    enabled: bool = True
    default: bool = False


@dataclass
class Package:
    id: int
    name: str
    memory: int
    storage: int
    traffic: int
    cpu_cores: int
    speed_in: int = 0
    speed_out: int = 0
    storage_profile: int = 0
    network_profile: int = 0
    backup_plan_id: int = 0
    enabled: bool = True
    created: dt.datetime = field(default_factory=utcnow)


@dataclass
class Template:
    id: int
    category: str
    name: str
    version: str
    variant: str = "Minimal"
    type: str = "linux"
    icon: str = "linux_logo.png"
    eol: bool = False
    #: Package ids that may install it (empty = every package).
    packages: tuple[int, ...] = ()


@dataclass
class User:
    id: int
    name: str
    email: str
    ext_relation_id: int | None
    self_service: int = 0
    suspended: bool = False
    created: dt.datetime = field(default_factory=utcnow)
    updated: dt.datetime = field(default_factory=utcnow)


@dataclass
class SshKey:
    id: int
    user_id: int
    name: str
    public_key: str
    created: dt.datetime = field(default_factory=utcnow)


@dataclass
class Credit:
    id: int
    user_id: int
    tokens: float
    reference_1: int | None
    reference_2: str | None


@dataclass
class TrafficBlock:
    id: int
    month: int
    amount_gb: int
    added: dt.datetime = field(default_factory=utcnow)


@dataclass
class Server:
    id: int
    owner_id: int
    hypervisor_id: int
    package_id: int
    memory: int
    cpu_cores: int
    storage: int
    traffic: int
    speed_in: int
    speed_out: int
    storage_profile: int
    network_profile: int
    ipv4: list[str]
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    name: str = ""
    hostname: str | None = None
    state: str = "allocated"
    commission_status: int = 0
    os_template_id: int = 0
    os_type: str = "linux"
    built: dt.datetime | None = None
    build_failed: bool = False
    power: str = "stopped"
    suspended: bool = False
    password: str | None = None
    ssh_key_ids: list[int] = field(default_factory=list)
    #: IPv6 subnet, visible once ``ipv6_visible_at`` (clock seconds) has passed.
    ipv6_subnet: str | None = None
    ipv6_visible_at: float | None = None
    vnc_enabled: bool = False
    vnc_port: int = 5900
    vnc_password: str = field(default_factory=lambda: secrets.token_urlsafe(6))
    vnc_token: str = field(default_factory=lambda: str(uuid.uuid4()))
    rx_bytes: int = 0
    tx_bytes: int = 0
    blocks: list[TrafficBlock] = field(default_factory=list)
    backups: list[dict[str, Any]] = field(default_factory=list)
    delete_at: float | None = None
    created: dt.datetime = field(default_factory=utcnow)
    updated: dt.datetime = field(default_factory=utcnow)


@dataclass
class QueueTask:
    id: int
    server_id: int
    hypervisor_id: int
    action: str
    started_at: float
    duration: float
    started: dt.datetime = field(default_factory=utcnow)
    on_done: Callable[[], None] | None = None
    fail_with: str | None = None
    finished: dt.datetime | None = None
    failed: bool = False

    def progress(self, now: float) -> int:
        if self.finished is not None:
            return 100
        if self.duration <= 0:
            return 99
        return min(99, int((now - self.started_at) / self.duration * 100))


@dataclass
class Fault:
    """A per-endpoint knob: ``kind`` is ``status`` (answer ``status``), ``timeout`` (hang ``seconds``),
    ``malformed`` (a 200 whose body is not JSON), ``latency`` (delay, then answer normally) or
    ``rate_limit`` (429 with ``Retry-After``). ``times`` limits how often it fires (``None`` = always).
    """

    kind: str
    method: str = "*"
    path: str = ""
    status: int = 500
    seconds: float = 0.0
    times: int | None = 1

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and path.startswith(self.path)


class VirtFusionState:
    """Everything the simulated panel knows, plus the knobs tests and the admin endpoint turn."""

    def __init__(
        self,
        *,
        tokens: dict[str, set[str] | None] | None = None,
        task_seconds: float = 2.0,
        ipv6_delay_seconds: float = 3.0,
        time_scale: float = 1.0,
        panel_url: str = "https://panel.example.test",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        #: API token -> granted permissions (``None`` = all of them).
        self.tokens: dict[str, set[str] | None] = tokens if tokens is not None else {"sim-token": None}
        self.task_seconds = task_seconds
        self.ipv6_delay_seconds = ipv6_delay_seconds
        self.time_scale = time_scale
        self.panel_url = panel_url.rstrip("/")
        self._clock = clock
        self.groups: dict[int, Group] = {}
        self.hypervisors: dict[int, Hypervisor] = {}
        self.packages: dict[int, Package] = {}
        self.templates: dict[int, Template] = {}
        self.users: dict[int, User] = {}
        self.ssh_keys: dict[int, SshKey] = {}
        self.servers: dict[int, Server] = {}
        self.tasks: dict[int, QueueTask] = {}
        self.credits: dict[int, Credit] = {}
        self.faults: list[Fault] = []
        #: The real VNC server (host, port) behind every server's console websocket (``/vnc/``);
        #: ``None`` = consoles answer, but their websocket closes with "no console".
        self.console_backend: tuple[str, int] | None = None
        #: (method, path, status) of every request, for tests.
        self.requests: list[tuple[str, str, int]] = []
        self._ids: dict[str, itertools.count[int]] = {}

    # --- clock and ids ---------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def next_id(self, kind: str, start: int = 1) -> int:
        counter = self._ids.setdefault(kind, itertools.count(start))
        return next(counter)

    # --- catalogue set-up ------------------------------------------------------------------------

    def add_group(self, name: str, *, description: str = "", default: bool = False) -> Group:
        group = Group(id=self.next_id("group"), name=name, description=description, default=default)
        self.groups[group.id] = group
        return group

    def add_hypervisor(
        self,
        group: Group,
        name: str,
        *,
        memory_mb: int = 65536,
        cpu_cores: int = 32,
        storage_gb: int = 2000,
        ipv4_count: int = 64,
        max_servers: int = 0,
        other_storage: list[StoragePool] | None = None,
    ) -> Hypervisor:
        hv_id = self.next_id("hypervisor")
        # 198.18.0.0/15 (RFC 2544, benchmarking) gives every hypervisor its own /24 without ever
        # colliding with a real network.
        net = ipaddress.ip_network(f"198.{18 + hv_id // 256 % 2}.{hv_id % 256}.0/24")
        pool = [str(ip) for ip in itertools.islice(net.hosts(), 9, 9 + ipv4_count)]
        hv = Hypervisor(
            id=hv_id,
            name=name,
            group_id=group.id,
            ip=f"198.19.0.{hv_id}",
            memory_mb=memory_mb,
            cpu_cores=cpu_cores,
            storage_gb=storage_gb,
            ipv4_pool=pool,
            ipv6_prefix=f"2001:db8:{hv_id:x}",
            max_servers=max_servers,
            other_storage=list(other_storage or []),
        )
        self.hypervisors[hv.id] = hv
        return hv

    def add_package(self, name: str, **values: Any) -> Package:
        package = Package(id=self.next_id("package"), name=name, **values)
        self.packages[package.id] = package
        return package

    def add_template(self, category: str, name: str, version: str, **values: Any) -> Template:
        template = Template(
            id=self.next_id("template"), category=category, name=name, version=version, **values
        )
        self.templates[template.id] = template
        return template

    # --- lookups ---------------------------------------------------------------------------------

    def server(self, server_id: int) -> Server:
        self.tick()
        server = self.servers.get(server_id)
        if server is None:
            raise SimError(404, "server not found")
        return server

    def user_by_ext(self, ext: int) -> User:
        for user in self.users.values():
            if user.ext_relation_id == ext:
                return user
        raise SimError(404, "ext_relation_id not found")

    def active_task(self, server: Server) -> QueueTask | None:
        for task in self.tasks.values():
            if task.server_id == server.id and task.finished is None:
                return task
        return None

    def ensure_unlocked(self, server: Server) -> None:
        if self.active_task(server) is not None:
            raise SimError(423, "server is currently locked by a running task")

    # --- capacity ------------------------------------------------------------------------------

    def on(self, hv: Hypervisor) -> list[Server]:
        return [s for s in self.servers.values() if s.hypervisor_id == hv.id]

    def used_ipv4(self) -> set[str]:
        return {ip for s in self.servers.values() for ip in s.ipv4}

    def free_ipv4(self, hv: Hypervisor) -> list[str]:
        used = self.used_ipv4()
        return [ip for ip in hv.ipv4_pool if ip not in used]

    def resources(self, hv: Hypervisor) -> dict[str, Any]:
        servers = self.on(hv)
        mem = sum(s.memory for s in servers)
        cores = sum(s.cpu_cores for s in servers)
        local = sum(s.storage for s in servers if s.storage_profile in (0, hv.local_storage_type))

        def block(units: str, maximum: int, allocated: int) -> dict[str, Any]:
            percent = round(allocated / maximum * 100, 1) if maximum else None
            return {
                "units": units,
                "max": maximum,
                "allocated": allocated,
                "free": maximum - allocated,
                "percent": percent,
            }

        other = []
        for pool in hv.other_storage:
            used = sum(s.storage for s in servers if s.storage_profile == pool.storage_type)
            other.append(
                {
                    "id": pool.id,
                    "name": pool.name,
                    "enabled": int(pool.enabled),
                    "path": None,
                    "storageType": pool.storage_type,
                    "isDatastore": True,
                }
                | block("GB", pool.max_gb, used)
            )
        return {
            "servers": block("#", hv.max_servers, len(servers)),
            "memory": block("MB", hv.memory_mb, mem),
            "cpuCores": block("#", hv.cpu_cores, cores),
            "localStorage": {
                "enabled": 1,
                "name": "Local (Default mountpoint)",
                "storageType": hv.local_storage_type,
            }
            | block("GB", hv.storage_gb, local),
            "otherStorage": other,
            "network": {"total": {"ipv4": {"free": len(self.free_ipv4(hv))}}},
        }

    def fits(
        self, hv: Hypervisor, memory: int, cores: int, storage: int, ipv4: int, *, servers: int = 1
    ) -> bool:
        if not hv.enabled or hv.prohibit or not hv.commissioned or hv.maintenance:
            return False
        res = self.resources(hv)
        if hv.max_servers and res["servers"]["free"] < servers:
            return False
        return (
            res["memory"]["free"] >= memory
            and res["cpuCores"]["free"] >= cores
            and res["localStorage"]["free"] >= storage
            and len(self.free_ipv4(hv)) >= ipv4
        )

    def place(self, group_id: int, memory: int, cores: int, storage: int, ipv4: int) -> Hypervisor:
        """The hypervisor of the group with the most free memory that fits (VirtFusion balances load)."""
        if group_id not in self.groups or not self.groups[group_id].enabled:
            raise SimError(422, "invalid hypervisor group", errors=["Invalid or disabled hypervisor group"])
        candidates = [
            hv
            for hv in self.hypervisors.values()
            if hv.group_id == group_id and self.fits(hv, memory, cores, storage, ipv4)
        ]
        if not candidates:
            raise SimError(
                422,
                "no capacity",
                errors=["No hypervisor in the selected group has enough free resources for this server"],
            )
        return max(candidates, key=lambda hv: self.resources(hv)["memory"]["free"])

    # --- tasks ---------------------------------------------------------------------------------

    def start_task(
        self,
        server: Server,
        action: str,
        on_done: Callable[[], None] | None = None,
        *,
        seconds: float | None = None,
        fail_with: str | None = None,
    ) -> QueueTask:
        task = QueueTask(
            id=self.next_id("queue", 100),
            server_id=server.id,
            hypervisor_id=server.hypervisor_id,
            action=action,
            started_at=self.now(),
            duration=self.scaled(self.task_seconds if seconds is None else seconds),
            on_done=on_done,
            fail_with=fail_with,
        )
        self.tasks[task.id] = task
        return task

    def tick(self) -> None:
        """Finish due tasks and scheduled deletions; runs before every request is answered."""
        now = self.now()
        for task in sorted(self.tasks.values(), key=lambda t: t.id):
            if task.finished is None and now - task.started_at >= task.duration:
                task.finished = utcnow()
                if task.fail_with:
                    task.failed = True
                elif task.on_done is not None:
                    task.on_done()
        for server in list(self.servers.values()):
            if server.delete_at is not None and now >= server.delete_at:
                del self.servers[server.id]

    # --- users ---------------------------------------------------------------------------------

    def create_user(self, name: str, email: str, ext: int | None, self_service: int = 0) -> User:
        if any(u.email.lower() == email.lower() for u in self.users.values()):
            raise SimError(422, "email taken", errors=["The email has already been taken."])
        if ext is not None and any(u.ext_relation_id == ext for u in self.users.values()):
            raise SimError(422, "ext taken", errors=["The ext relation id has already been taken."])
        user = User(
            id=self.next_id("user"), name=name, email=email, ext_relation_id=ext, self_service=self_service
        )
        self.users[user.id] = user
        return user

    def credit_balance(self, user: User) -> float:
        return round(sum(c.tokens for c in self.credits.values() if c.user_id == user.id), 2)

    # --- demo catalogue ------------------------------------------------------------------------

    def seed_demo(self) -> VirtFusionState:
        """2 groups x 3 hypervisors, four packages and a small OS catalogue (the demo and tests use it)."""
        for gname, desc in (("London", "UK, Docklands"), ("Frankfurt", "Germany, Ostend")):
            group = self.add_group(gname, description=desc, default=not self.groups)
            for n in range(1, 4):
                pools = [StoragePool(id=n, name="NVMe pool", storage_type=2, max_gb=4000)] if n == 3 else []
                self.add_hypervisor(
                    group,
                    f"{gname[:3].upper()}-HV{n}",
                    memory_mb=32768 * n,
                    cpu_cores=16 * n,
                    storage_gb=1000 * n,
                    ipv4_count=16 * n,
                    other_storage=pools,
                )
        self.add_package("VPS 1G", memory=1024, storage=25, traffic=1000, cpu_cores=1)
        self.add_package("VPS 2G", memory=2048, storage=50, traffic=2000, cpu_cores=2)
        self.add_package("VPS 4G", memory=4096, storage=80, traffic=4000, cpu_cores=4, speed_in=125000)
        self.add_package("VPS 8G NVMe", memory=8192, storage=160, traffic=0, cpu_cores=4, storage_profile=2)
        self.add_package("Retired", memory=512, storage=10, traffic=500, cpu_cores=1, enabled=False)
        self.add_template("Debian", "Debian", "12 (Bookworm)", icon="debian_logo.png")
        self.add_template("Debian", "Debian", "11 (Bullseye)", icon="debian_logo.png", eol=True)
        self.add_template("Ubuntu", "Ubuntu Server", "24.04 LTS", icon="ubuntu_logo.png")
        self.add_template("Ubuntu", "Ubuntu Server", "22.04 LTS", icon="ubuntu_logo.png")
        self.add_template("AlmaLinux", "AlmaLinux", "9", icon="alma_logo.png")
        self.add_template(
            "Windows",
            "Windows Server",
            "2022",
            variant="Standard",
            type="windows",
            icon="windows_logo.png",
            packages=(3, 4),
        )
        return self
