"""The simulated Proxmox VE cluster: nodes, storages, VMs, tasks, locks and injected faults.

Everything is in memory and advanced lazily: tasks have an end time on the simulator's clock and
are completed by :meth:`ProxmoxState.tick`, which every request runs first. Tests can make tasks
instant (``time_scale=0``), move the clock (:meth:`advance`), take a node offline, make a guest
ignore ACPI, hold a VM's file lock so calls time out, or inject faults and latency per endpoint.

Errors are raised as :class:`PveError` carrying what pveproxy would answer: the status, the reason
phrase (the message) and, for parameter errors, the ``errors`` map.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpsbridge.core.disks import (
    Drive,
    format_size,
    gib,
    is_cloudinit_volume,
    iter_drives,
    parse_drive,
    parse_property_string,
    parse_size,
    parse_volid,
)
from vpsbridge.platforms.proxmox.upid import format_upid
from vpsbridge.sim.proxmox.params import Tables, tables_from_schema

#: Task durations in seconds (before ``time_scale``), by task type.
DEFAULT_DURATIONS: dict[str, float] = {
    "qmclone": 3.0,
    "qmigrate": 3.0,
    "resize": 0.5,
    "qmstart": 1.0,
    "qmstop": 0.5,
    "qmshutdown": 2.0,
    "qmreboot": 2.0,
    "qmreset": 0.1,
    "qmdestroy": 1.0,
    "qmmove": 1.0,
    "qmconfig": 0.2,
    "vncproxy": 0.0,
    "termproxy": 0.0,
}
ALL_PRIVILEGES: frozenset[str] = frozenset(
    {
        "VM.Allocate",
        "VM.Audit",
        "VM.Clone",
        "VM.Config.CDROM",
        "VM.Config.CPU",
        "VM.Config.Cloudinit",
        "VM.Config.Disk",
        "VM.Config.HWType",
        "VM.Config.Memory",
        "VM.Config.Network",
        "VM.Config.Options",
        "VM.Console",
        "VM.Migrate",
        "VM.PowerMgmt",
        "Datastore.Allocate",
        "Datastore.AllocateSpace",
        "Datastore.Audit",
        "Sys.Audit",
        "SDN.Use",
    }
)
LOCK_VALUES = (
    "backup",
    "clone",
    "create",
    "migrate",
    "rollback",
    "snapshot",
    "snapshot-delete",
    "suspending",
)
HOTPLUG_DEFAULT = "network,disk,usb"
_CI_KEYS = ("ciuser", "cipassword", "sshkeys", "nameserver", "searchdomain", "citype")


class PveError(Exception):
    """An error answer: HTTP status, reason phrase, optional per-parameter ``errors``."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or {}


def param_error(errors: dict[str, str]) -> PveError:
    return PveError(400, "Parameter verification failed.", errors)


@dataclass
class SimStorage:
    id: str
    type: str
    shared: bool
    total: int
    content: tuple[str, ...] = ("images", "rootdir")
    volumes: dict[str, int] = field(default_factory=dict)
    base_used: int = 0

    @property
    def file_based(self) -> bool:
        return self.type in ("dir", "nfs", "cifs", "cephfs", "btrfs", "glusterfs")

    @property
    def used(self) -> int:
        return self.base_used + sum(self.volumes.values())

    @property
    def avail(self) -> int:
        return max(0, self.total - self.used)

    def new_volname(self, vmid: int, kind: str = "disk", fmt: str = "raw") -> str:
        if kind == "cloudinit":
            name = f"vm-{vmid}-cloudinit"
        else:
            taken = {v.rsplit("/", 1)[-1].split(".")[0] for v in self.volumes}
            index = next(i for i in itertools.count() if f"vm-{vmid}-disk-{i}" not in taken)
            name = f"vm-{vmid}-disk-{index}"
        return f"{vmid}/{name}.{fmt}" if self.file_based else name


@dataclass
class SimNode:
    name: str
    maxcpu: int
    maxmem: int
    storages: dict[str, SimStorage]
    online: bool = True
    base_mem: int = 2 * 1024**3


@dataclass
class SimVM:
    vmid: int
    node: str
    config: dict[str, str]
    pending: dict[str, str] = field(default_factory=dict)
    pending_delete: set[str] = field(default_factory=set)
    status: str = "stopped"
    ignore_acpi: bool = False
    firewall: dict[str, str] = field(default_factory=dict)
    ipsets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    ipset_comments: dict[str, str] = field(default_factory=dict)
    started_at: float | None = None
    netin: int = 0
    netout: int = 0

    @property
    def lock(self) -> str | None:
        return self.config.get("lock")

    @property
    def template(self) -> bool:
        return self.config.get("template") == "1"

    def digest(self) -> str:
        text = "\n".join(f"{k}: {v}" for k, v in sorted(self.config.items()))
        text += "\n[PENDING]\n" + "\n".join(f"{k}: {v}" for k, v in sorted(self.pending.items()))
        text += "\ndelete: " + ",".join(sorted(self.pending_delete))
        return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - Proxmox's digest is SHA1

    def memory_mb(self) -> int:
        raw = self.config.get("memory", "512")
        return int(parse_property_string(raw, default_key="current").get("current", "512"))

    def cores(self) -> int:
        return int(self.config.get("cores", "1")) * int(self.config.get("sockets", "1"))


@dataclass
class SimTask:
    upid: str
    node: str
    type: str
    id: str
    user: str
    started: float
    ends: float | None
    finish: Callable[[], str | None] | None = None
    status: str = "running"
    exitstatus: str | None = None
    log: list[str] = field(default_factory=list)
    starttime: int = 0


@dataclass
class Fault:
    """An injected failure: ``status`` (5xx, 595, 596), ``timeout`` or ``reset``, ``times`` requests."""

    method: str
    path: re.Pattern[str]
    kind: str = "status"
    status: int = 500
    message: str = "Internal Server Error"
    times: int = 1
    probability: float = 1.0


@dataclass
class Principal:
    userid: str
    token: str | None
    privileges: frozenset[str]

    @property
    def name(self) -> str:
        return f"{self.userid}!{self.token}" if self.token else self.userid


class ProxmoxState:
    """One simulated cluster. ``version`` switches version-dependent behaviour (resize tasks)."""

    def __init__(
        self,
        *,
        version: str = "9.1.3",
        time_scale: float = 1.0,
        durations: dict[str, float] | None = None,
        seed: int | None = None,
    ) -> None:
        self.version = version
        self.time_scale = time_scale
        self.durations = {**DEFAULT_DURATIONS, **(durations or {})}
        self.random = random.Random(seed)
        self.nodes: dict[str, SimNode] = {}
        self.shared_storages: dict[str, SimStorage] = {}
        self.vms: dict[int, SimVM] = {}
        self.tasks: dict[str, SimTask] = {}
        self.tokens: dict[str, tuple[str, frozenset[str]]] = {}
        self.users: dict[str, tuple[str, frozenset[str]]] = {}
        self.tickets: dict[str, tuple[str, str, float]] = {}
        self.faults: list[Fault] = []
        self.latency: list[tuple[str, re.Pattern[str], float]] = []
        self.file_locks: dict[int, float] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        #: vncticket -> (vmid, port, valid until, user who asked): PVE binds a ticket to all four.
        self.vnc_tickets: dict[str, tuple[int, int, float, str]] = {}
        #: The real VNC server (host, port) behind every VM's ``vncwebsocket``; ``None`` = no console.
        self.console_backend: tuple[str, int] | None = None
        self.mac_prefix = "BC:24:11"
        #: Injected task outcomes: [task type, error (None = never finishes), remaining count].
        self.task_faults: list[list[Any]] = []
        #: Probability that a synchronous config change hits a busy VM file lock (lock timeout).
        self.file_lock_probability = 0.0
        #: Probability that a clone onto LVM/LVM-thin storage fails on the storage lock.
        self.storage_lock_probability = 0.0
        #: Parameter tables derived from the official API schema (see :meth:`use_schema`).
        self.param_tables: Tables | None = None
        self._clock_offset = 0.0
        self._pid = itertools.count(0x1000)

    def use_schema(self, path: str | Path) -> None:
        """Check parameters against Proxmox's own API schema file instead of the built-in tables."""
        self.param_tables = tables_from_schema(path)

    # --- clock and tasks ---

    def now(self) -> float:
        return time.monotonic() + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward (tasks due by then complete on the next tick)."""
        self._clock_offset += seconds
        self.tick()

    def duration(self, task_type: str, override: float | None = None) -> float:
        base = self.durations.get(task_type, 0.5) if override is None else override
        return max(0.0, base * self.time_scale)

    def fail_next_task(self, task_type: str, error: str | None, times: int = 1) -> None:
        """Make the next ``times`` tasks of ``task_type`` fail with ``error`` (``None``: run forever)."""
        self.task_faults.append([task_type, error, times])

    def take_task_fault(self, task_type: str) -> tuple[bool, str | None]:
        for fault in self.task_faults:
            if fault[0] == task_type and fault[2] > 0:
                fault[2] -= 1
                return True, fault[1]
        return False, None

    def start_task(
        self,
        node: str,
        task_type: str,
        task_id: str,
        user: str,
        finish: Callable[[], str | None] | None,
        *,
        seconds: float | None = None,
        forever: bool = False,
    ) -> SimTask:
        if task_type != "qmclone":  # clone applies its injected failure itself (with cleanup)
            injected, error = self.take_task_fault(task_type)
            if injected and error is None:
                forever = True
            elif injected:
                vmid = int(task_id) if task_id.isdigit() else None

                def finish(error: str = str(error), vmid: int | None = vmid) -> str | None:
                    vm = self.vms.get(vmid) if vmid is not None else None
                    if vm is not None and vm.lock in ("migrate", "destroyed"):
                        vm.config.pop("lock", None)
                    return error

        now = self.now()
        wall = int(time.time() + self._clock_offset)
        upid = format_upid(node, next(self._pid), int(now * 100) & 0xFFFFFFFF, wall, task_type, task_id, user)
        task = SimTask(
            upid=upid,
            node=node,
            type=task_type,
            id=task_id,
            user=user,
            started=now,
            ends=None if forever else now + self.duration(task_type, seconds),
            finish=finish,
            starttime=wall,
        )
        task.log.append(f"task started by {user}")
        self.tasks[upid] = task
        if task.ends is not None and task.ends <= now:
            self._complete(task)
        return task

    def _complete(self, task: SimTask) -> None:
        error: str | None = None
        if task.finish is not None:
            try:
                error = task.finish()
            except PveError as exc:
                error = exc.message
        task.status = "stopped"
        if error is None:
            task.exitstatus = "OK"
            task.log.append("TASK OK")
        else:
            task.exitstatus = error
            task.log.append(f"TASK ERROR: {error}")

    def tick(self) -> None:
        now = self.now()
        due = sorted(
            (
                t
                for t in self.tasks.values()
                if t.status == "running" and t.ends is not None and t.ends <= now
            ),
            key=lambda t: t.ends or 0.0,
        )
        for task in due:
            self._complete(task)

    def task(self, node: str, upid: str) -> SimTask:
        task = self.tasks.get(upid)
        if task is None or task.node != node:
            raise PveError(500, f"no such task '{upid}'")
        return task

    def abort_task(self, task: SimTask, error: str = "unexpected status") -> None:
        task.ends = self.now()
        task.finish = lambda: error

    # --- inventory ---

    def add_node(
        self,
        name: str,
        *,
        cpus: int = 32,
        memory_gb: int = 128,
        local_storage: dict[str, tuple[str, int]] | None = None,
    ) -> SimNode:
        """A node with local storages ``{id: (type, size_gb)}`` plus every shared storage."""
        locals_ = local_storage if local_storage is not None else {"local-lvm": ("lvmthin", 2000)}
        storages = {sid: SimStorage(sid, stype, False, gib(size)) for sid, (stype, size) in locals_.items()}
        storages.update(self.shared_storages)
        node = SimNode(name, cpus, memory_gb * 1024**3, storages)
        self.nodes[name] = node
        return node

    def add_shared_storage(self, sid: str, stype: str = "rbd", size_gb: int = 10000) -> SimStorage:
        storage = SimStorage(sid, stype, True, gib(size_gb))
        self.shared_storages[sid] = storage
        for node in self.nodes.values():
            node.storages[sid] = storage
        return storage

    def node(self, name: str) -> SimNode:
        node = self.nodes.get(name)
        if node is None:
            raise PveError(500, f"hostname lookup '{name}' failed - failed to get address info for: {name}")
        if not node.online:
            raise PveError(595, f"Connection refused - node '{name}' is offline")
        return node

    def set_node_online(self, name: str, online: bool) -> None:
        self.nodes[name].online = online
        if not online:
            for vm in self.vms.values():
                if vm.node == name and vm.status == "running":
                    vm.status = "stopped"

    def storage(self, node: SimNode, sid: str) -> SimStorage:
        storage = node.storages.get(sid)
        if storage is None:
            raise PveError(500, f"storage '{sid}' does not exist on node '{node.name}'")
        return storage

    def add_token(self, token_id: str, secret: str, privileges: frozenset[str] | None = None) -> None:
        self.tokens[token_id] = (secret, ALL_PRIVILEGES if privileges is None else privileges)

    def add_user(self, userid: str, password: str, privileges: frozenset[str] | None = None) -> None:
        self.users[userid] = (password, ALL_PRIVILEGES if privileges is None else privileges)

    def add_template(
        self,
        vmid: int,
        node: str,
        name: str,
        *,
        storage: str = "local-lvm",
        disk_gb: int = 3,
        ostype: str = "l26",
        extra: dict[str, str] | None = None,
    ) -> SimVM:
        """A cloud-init ready template: system disk on scsi0, cloud-init drive on ide2."""
        store = self.storage(self.nodes[node], storage)
        fmt = "qcow2" if store.file_based else "raw"
        disk = store.new_volname(vmid, fmt=fmt).replace("vm-", "base-", 1)
        store.volumes[disk] = gib(disk_gb)
        ci = store.new_volname(vmid, "cloudinit", fmt="qcow2" if store.file_based else "raw")
        store.volumes[ci] = 4 * 1024**2
        config = {
            "name": name,
            "template": "1",
            "ostype": ostype,
            "cores": "1",
            "sockets": "1",
            "memory": "1024",
            "scsihw": "virtio-scsi-single",
            "scsi0": f"{storage}:{disk},iothread=1,size={disk_gb}G",
            "ide2": f"{storage}:{ci},media=cdrom",
            "boot": "order=scsi0;ide2;net0",
            "net0": f"virtio={self.new_mac()},bridge=vmbr0,firewall=1",
            "agent": "1",
            "serial0": "socket",
            "vga": "serial0",
            "smbios1": f"uuid={uuid.uuid4()}",
            "vmgenid": str(uuid.uuid4()),
            "meta": "creation-qemu=9.2.0,ctime=1735689600",
        }
        config.update(extra or {})
        vm = SimVM(vmid, node, config)
        self.vms[vmid] = vm
        return vm

    def new_mac(self) -> str:
        tail = ":".join(f"{self.random.randrange(256):02X}" for _ in range(3))
        return f"{self.mac_prefix}:{tail}"

    # --- authentication ---

    def authenticate(self, headers: dict[str, str], method: str) -> Principal:
        auth = headers.get("authorization", "")
        if auth.startswith("PVEAPIToken"):
            value = auth[len("PVEAPIToken") :].lstrip("= ")
            token_id, sep, secret = value.rpartition("=")
            if not sep:
                token_id, _, secret = value.partition(" ")
            known = self.tokens.get(token_id)
            if known is None or not secrets.compare_digest(known[0], secret) or "!" not in token_id:
                raise PveError(401, "invalid token value!")
            userid, _, token = token_id.partition("!")
            return Principal(userid, token, known[1])
        cookie = headers.get("cookie", "")
        match = re.search(r"PVEAuthCookie=([^;]+)", cookie)
        if match is None:
            raise PveError(401, "No ticket")
        ticket = self.tickets.get(match[1])
        if ticket is None or ticket[2] < self.now():
            raise PveError(401, "invalid PVE ticket")
        if method != "GET" and headers.get("csrfpreventiontoken") != ticket[1]:
            raise PveError(401, "Permission denied - invalid csrf token")
        return Principal(ticket[0], None, self.users[ticket[0]][1])

    def login(self, username: str, password: str, realm: str | None = None) -> dict[str, str]:
        userid = username if "@" in username else f"{username}@{realm or 'pam'}"
        known = self.users.get(userid)
        if known is None or not secrets.compare_digest(known[0], password):
            raise PveError(401, "authentication failure")
        ticket = f"PVE:{userid}:{secrets.token_hex(8).upper()}::{secrets.token_urlsafe(32)}"
        csrf = f"{secrets.token_hex(4).upper()}:{secrets.token_urlsafe(24)}"
        self.tickets[ticket] = (userid, csrf, self.now() + 7200)
        return {"ticket": ticket, "CSRFPreventionToken": csrf, "username": userid, "clustername": "sim"}

    @staticmethod
    def require(principal: Principal, path: str, privilege: str) -> None:
        if privilege not in principal.privileges:
            raise PveError(403, f"Permission check failed ({path}, {privilege})")

    # --- faults ---

    def add_fault(
        self,
        path: str,
        *,
        method: str = "*",
        kind: str = "status",
        status: int = 500,
        message: str | None = None,
        times: int = 1,
        probability: float = 1.0,
    ) -> Fault:
        """Fail the next ``times`` matching requests (``path`` is a regex searched in the API path)."""
        default = {595: "Connection refused", 596: "Connection timed out"}.get(
            status, "Internal Server Error"
        )
        fault = Fault(method.upper(), re.compile(path), kind, status, message or default, times, probability)
        self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times <= 0 or (fault.method not in ("*", method)) or not fault.path.search(path):
                continue
            if fault.probability < 1.0 and self.random.random() >= fault.probability:
                continue
            fault.times -= 1
            return fault
        return None

    def set_latency(self, path: str, seconds: float, method: str = "*") -> None:
        self.latency.append((method.upper(), re.compile(path), seconds))

    def latency_for(self, method: str, path: str) -> float:
        return sum(s for m, p, s in self.latency if m in ("*", method) and p.search(path))

    def hold_file_lock(self, vmid: int, seconds: float = 3600.0) -> None:
        """Keep ``/var/lock/qemu-server/lock-<vmid>.conf`` held: synchronous changes time out."""
        self.file_locks[vmid] = self.now() + seconds

    def release_file_lock(self, vmid: int) -> None:
        self.file_locks.pop(vmid, None)

    def check_file_lock(self, vmid: int) -> None:
        held = self.file_locks.get(vmid)
        busy = self.file_lock_probability > 0 and self.random.random() < self.file_lock_probability
        if busy or (held is not None and held > self.now()):
            raise PveError(500, f"can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout")

    # --- VM lookup and locks ---

    def vm(self, node: str, vmid: int) -> SimVM:
        vm = self.vms.get(vmid)
        if vm is None or vm.node != node:
            raise PveError(500, f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist")
        return vm

    @staticmethod
    def check_lock(vm: SimVM, skiplock: bool = False) -> None:
        if vm.lock and not skiplock:
            raise PveError(500, f"VM is locked ({vm.lock})")

    def next_id(self) -> int:
        return next(i for i in itertools.count(100) if i not in self.vms)

    # --- volumes ---

    def storage_of_volid(self, node: SimNode, volid: str) -> tuple[SimStorage, str]:
        parsed = parse_volid(volid)
        if parsed is None:
            raise PveError(500, f"unable to parse volume ID '{volid}'")
        return self.storage(node, parsed[0]), parsed[1]

    def volume_size(self, node: SimNode, volid: str) -> int:
        storage, volname = self.storage_of_volid(node, volid)
        if volname not in storage.volumes:
            raise PveError(500, f"volume '{volid}' does not exist")
        return storage.volumes[volname]

    def allocate(self, node: SimNode, sid: str, vmid: int, size: int, fmt: str | None = None) -> str:
        storage = self.storage(node, sid)
        if "images" not in storage.content:
            raise PveError(500, f"storage '{sid}' does not support vm images")
        if size > storage.avail:
            raise PveError(500, f"unable to allocate volume on storage '{sid}': not enough free space")
        volname = storage.new_volname(vmid, fmt=fmt or ("qcow2" if storage.file_based else "raw"))
        storage.volumes[volname] = size
        return f"{sid}:{volname}"

    def free_volume(self, node: SimNode, volid: str) -> None:
        parsed = parse_volid(volid)
        if parsed is None:
            return
        storage = node.storages.get(parsed[0])
        if storage is not None:
            storage.volumes.pop(parsed[1], None)

    def vm_volumes(self, vm: SimVM) -> list[str]:
        out = []
        for key, value in vm.config.items():
            if re.fullmatch(r"(ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0|unused\d+", key):
                try:
                    drive = parse_drive(key, value)
                except ValueError:
                    continue
                if drive.has_volume and (not drive.is_cdrom or is_cloudinit_volume(drive.file)):
                    out.append(drive.file)
        return out

    # --- clone ---

    def clone(self, principal: Principal, node_name: str, vmid: int, params: dict[str, str]) -> SimTask:
        node = self.node(node_name)
        source = self.vm(node_name, vmid)
        newid = int(params["newid"])
        if newid in self.vms:
            raise PveError(
                500,
                f"unable to create VM {newid}: VM {newid} already exists on node '{self.vms[newid].node}'",
            )
        full = _bool(params.get("full", "0" if source.template else "1"))
        if not source.template and not full:
            raise param_error({"full": "must be set to 1 for non-template VMs"})
        if not full and ("storage" in params or "format" in params):
            key = "storage" if "storage" in params else "format"
            raise param_error({key: f"parameter '{key}' not allowed for linked clones"})
        target = params.get("target")
        if target and target != node_name:
            target_node = self.node(target)
            local = [
                f
                for f in self.vm_volumes(source)
                if not self.storage_of_volid(node, f)[0].shared and not is_cloudinit_volume(f)
            ]
            if local:
                raise PveError(500, f"can't clone VM to node '{target}' (VM uses local storage)")
            dest_sid = params.get("storage")
            if dest_sid and not self.storage(target_node, dest_sid).shared:
                raise PveError(500, f"storage '{dest_sid}' is not available on node '{node_name}'")
        if params.get("storage"):
            self.storage(node, params["storage"])
        self.check_lock(source)
        # The new config exists at once, locked, as the task starts.
        vm = SimVM(newid, node_name, {"lock": "clone"})
        self.vms[newid] = vm
        allocated: list[str] = []
        new_drives: dict[str, str] = {}
        fmt = params.get("format")
        failure: str | None = None
        # Volumes are allocated as the worker starts, so parallel clones compete for space.
        try:
            for drive in iter_drives(source.config):
                if not drive.has_volume:
                    continue
                src_storage, _ = self.storage_of_volid(node, drive.file)
                sid = params.get("storage", src_storage.id) if full else src_storage.id
                dest = self.storage(node, sid)
                if is_cloudinit_volume(drive.file):
                    volname = dest.new_volname(newid, "cloudinit", "qcow2" if dest.file_based else "raw")
                    dest.volumes[volname] = 4 * 1024**2
                    volid = f"{sid}:{volname}"
                    allocated.append(volid)
                    new_drives[drive.key] = Drive(drive.key, volid, drive.options).value()
                    continue
                size = self.volume_size(node, drive.file)
                dfmt = fmt or ("qcow2" if dest.file_based else "raw")
                volid = self.allocate(node, sid, newid, size, dfmt)
                allocated.append(volid)
                options = dict(drive.options)
                options["size"] = format_size(size)
                new_drives[drive.key] = Drive(drive.key, volid, options).value()
        except PveError as exc:
            failure = f"clone failed: {exc.message}"
        injected, injected_error = self.take_task_fault("qmclone")
        stalled = injected and injected_error is None
        if injected and injected_error is not None and failure is None:
            failure = f"clone failed: {injected_error}"
        lvm_ids = [
            sid
            for sid in (p[0] for p in map(parse_volid, allocated) if p)
            if self.storage(node, sid).type in ("lvm", "lvmthin")
        ]
        contention = (
            self.storage_lock_probability > 0 and self.random.random() < self.storage_lock_probability
        )
        if failure is None and lvm_ids and contention:
            lock_file = f"/var/lock/pve-manager/pve-storage-{lvm_ids[0]}"
            failure = f"clone failed: can't lock file '{lock_file}' - got timeout"

        def finish() -> str | None:
            if self.vms.get(newid) is not vm:
                return f"clone failed: VM {newid} vanished"
            if failure is not None:
                self._drop_clone(vm, allocated, node)
                return failure
            if not self.nodes[node_name].online:
                self._drop_clone(vm, allocated, node)
                return f"clone failed: node '{node_name}' went offline"
            config = {k: v for k, v in source.config.items() if not k.startswith("unused")}
            config.pop("template", None)
            config.pop("lock", None)
            config.update(new_drives)
            for key in list(config):
                if re.fullmatch(r"net\d+", key):
                    net = parse_property_string(config[key])
                    model = next((k for k in net if k in _NET_MODELS), "virtio")
                    net[model] = self.new_mac()
                    config[key] = ",".join(f"{k}={v}" for k, v in net.items())
            config["smbios1"] = f"uuid={uuid.uuid4()}"
            if "vmgenid" in config:
                config["vmgenid"] = str(uuid.uuid4())
            config["name"] = params.get("name") or f"Copy-of-VM-{source.config.get('name', vmid)}"
            if "description" in params:
                config["description"] = params["description"]
            vm.config = config
            vm.firewall = dict(source.firewall)
            if target and target != node_name:
                if not self.nodes[target].online:
                    self._drop_clone(vm, allocated, node)
                    return f"clone failed: target node '{target}' is offline"
                vm.node = target
            return None

        task = self.start_task(node_name, "qmclone", str(vmid), principal.name, finish, forever=stalled)
        task.log.append(f"create {'full' if full else 'linked'} clone of drive(s) to VM {newid}")
        return task

    def _drop_clone(self, vm: SimVM, allocated: list[str], node: SimNode) -> None:
        for volid in allocated:
            self.free_volume(node, volid)
        if self.vms.get(vm.vmid) is vm:
            del self.vms[vm.vmid]

    # --- migrate ---

    def migrate(self, principal: Principal, node_name: str, vmid: int, params: dict[str, str]) -> SimTask:
        node = self.node(node_name)
        vm = self.vm(node_name, vmid)
        target = params["target"]
        if target == node_name:
            raise PveError(400, "Parameter verification failed.", {"target": "target is local node."})
        if target not in self.nodes:
            raise PveError(500, f"no such cluster node '{target}'")
        if not self.nodes[target].online:
            raise PveError(500, f"target node '{target}' is not online")
        if vm.status == "running" and not _bool(params.get("online", "0")):
            raise PveError(500, "can't migrate running VM without --online")
        self.check_lock(vm)
        mapping = _storage_map(params.get("targetstorage"))
        vm.config["lock"] = "migrate"
        moves: list[tuple[str, str]] = []
        for drive in iter_drives(vm.config):
            if not drive.has_volume:
                continue
            storage, _ = self.storage_of_volid(node, drive.file)
            if storage.shared:
                continue
            dest = mapping.get(storage.id, mapping.get("*", storage.id))
            moves.append((drive.key, dest))

        def finish() -> str | None:
            vm.config.pop("lock", None)
            target_node = self.nodes[target]
            if not target_node.online:
                return f"migration aborted: target node '{target}' is not online"
            if not self.nodes[node_name].online:
                return f"migration aborted: source node '{node_name}' went offline"
            new_config = dict(vm.config)
            created: list[str] = []
            try:
                for key, dest_sid in moves:
                    drive = parse_drive(key, vm.config[key])
                    size = self.volume_size(node, drive.file)
                    volid = self.allocate(target_node, dest_sid, vmid, size)
                    created.append(volid)
                    new_config[key] = Drive(key, volid, drive.options).value()
            except PveError as exc:
                for volid in created:
                    self.free_volume(target_node, volid)
                return f"migration aborted: {exc.message}"
            for key, _dest in moves:
                self.free_volume(node, parse_drive(key, vm.config[key]).file)
            vm.config = new_config
            vm.node = target
            return None

        task = self.start_task(node_name, "qmigrate", str(vmid), principal.name, finish)
        task.log.append(f"starting migration of VM {vmid} to node '{target}'")
        return task

    # --- config ---

    def update_config(self, vm: SimVM, node: SimNode, params: dict[str, str]) -> None:
        """Apply a config change (sync part of POST/PUT config), pending rules included."""
        self.check_file_lock(vm.vmid)
        self.check_lock(vm, _bool(params.get("skiplock", "0")))
        digest = params.get("digest")
        if digest and digest != vm.digest():
            raise PveError(500, "detected modified configuration - file changed by other user? Try again.")
        deletes = [k for k in re.split(r"[,;\s]+", params.get("delete", "")) if k]
        reverts = [k for k in re.split(r"[,;\s]+", params.get("revert", "")) if k]
        changes = {
            k: v
            for k, v in params.items()
            if k
            not in ("delete", "revert", "digest", "skiplock", "force", "background_delay", "node", "vmid")
        }
        for key in set(deletes) & set(changes):
            raise param_error({key: "can't set and delete the same option"})
        hotplug = set((vm.config.get("hotplug", HOTPLUG_DEFAULT)).split(","))
        running = vm.status == "running"
        for key in reverts:
            vm.pending.pop(key, None)
            vm.pending_delete.discard(key)
        for key, value in changes.items():
            value = self._prepare_value(vm, node, key, value)
            if running and not _hotpluggable(key, hotplug):
                vm.pending[key] = value
            else:
                vm.config[key] = value
                vm.pending.pop(key, None)
        for key in deletes:
            if running and not _hotpluggable(key, hotplug):
                vm.pending_delete.add(key)
            else:
                self._delete_key(vm, node, key)

    def _prepare_value(self, vm: SimVM, node: SimNode, key: str, value: str) -> str:
        if re.fullmatch(r"(ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0", key):
            drive = parse_drive(key, value)
            new_alloc = re.fullmatch(
                r"(?P<sid>[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]):(?P<size>\d+(\.\d+)?)", drive.file
            )
            if new_alloc and drive.options.get("media") != "cdrom":
                size = gib(float(new_alloc["size"]))
                volid = self.allocate(node, new_alloc["sid"], vm.vmid, size, drive.options.get("format"))
                options = {k: v for k, v in drive.options.items() if k != "format"}
                options["size"] = format_size(size)
                return Drive(key, volid, options).value()
            existing = vm.config.get(key)
            if existing:
                old = parse_drive(key, existing)
                if old.file == drive.file and "size" in old.options:
                    drive.options["size"] = old.options["size"]
            return drive.value()
        if re.fullmatch(r"net\d+", key):
            net = parse_property_string(value, default_key="model")
            if "model" in net:
                model = net.pop("model")
                if model not in _NET_MODELS:
                    raise param_error({key: f"invalid format - value '{model}' is not a NIC model"})
                mac = net.pop("macaddr", None) or self.new_mac()
                net = {model: mac, **net}
            else:
                model = next((k for k in net if k in _NET_MODELS), "")
                if not model:
                    raise param_error({key: "invalid format - missing NIC model"})
                net[model] = net[model] or self.new_mac()
            return ",".join(f"{k}={v}" for k, v in net.items())
        if key == "memory" and value.isdigit():
            return value
        return value

    def _delete_key(self, vm: SimVM, node: SimNode, key: str) -> None:
        value = vm.config.pop(key, None)
        vm.pending.pop(key, None)
        if value is not None and re.fullmatch(r"unused\d+", key):
            self.free_volume(node, value)  # deleting an unused entry destroys the volume
            return
        if value is None or not re.fullmatch(r"(ide|sata|scsi|virtio)\d+", key):
            return
        drive = parse_drive(key, value)
        if drive.has_volume and not drive.is_cdrom:
            index = next(i for i in itertools.count() if f"unused{i}" not in vm.config)
            vm.config[f"unused{index}"] = drive.file
        elif is_cloudinit_volume(drive.file):
            self.free_volume(node, drive.file)

    def apply_pending(self, vm: SimVM) -> None:
        node = self.nodes[vm.node]
        vm.config.update(vm.pending)
        for key in vm.pending_delete:
            self._delete_key(vm, node, key)
        vm.pending.clear()
        vm.pending_delete.clear()

    # --- resize ---

    def resize(self, vm: SimVM, node: SimNode, disk: str, size: str) -> Callable[[], str | None]:
        """Validate synchronously; return the task body (the caller runs it sync on PVE 7)."""
        self.check_file_lock(vm.vmid)
        self.check_lock(vm)
        raw = vm.config.get(disk)
        if not raw:
            raise PveError(500, f"disk '{disk}' does not exist")
        drive = parse_drive(disk, raw)
        if drive.is_cdrom:
            raise PveError(500, "you can't resize a cdrom")
        current = self.volume_size(node, drive.file)
        relative = size.startswith("+")
        amount = parse_size(size.lstrip("+"))
        new = current + amount if relative else amount

        def finish() -> str | None:
            if new < current:
                return "shrinking disks is not supported"
            if new == current:
                return None
            storage, volname = self.storage_of_volid(node, drive.file)
            if new - current > storage.avail:
                return f"unable to resize volume on storage '{storage.id}': not enough free space"
            storage.volumes[volname] = new
            current_raw = vm.config.get(disk)
            if current_raw:
                updated = parse_drive(disk, current_raw)
                updated.options["size"] = format_size(new)
                vm.config[disk] = updated.value()
            return None

        return finish

    # --- move_disk ---

    def move_disk(self, principal: Principal, vm: SimVM, params: dict[str, str]) -> SimTask:
        """Move a disk to another storage, or reassign it to another VM on the same node (PVE 7.3+).

        Reassigning renames the volume to the target VM's id (``vm-<target>-disk-N``), removes the
        key from the source and adds it to the target; the data itself is untouched. Validation is
        synchronous (as pvedaemon does before forking the ``qmmove`` worker).
        """
        disk = params["disk"]
        storage_id = params.get("storage")
        target_raw = params.get("target-vmid")
        if storage_id and target_raw:
            raise PveError(500, "either set 'storage' or 'target-vmid', but not both")
        if not storage_id and not target_raw:
            raise PveError(
                500,
                "Provide either a 'storage' to move the disk to a different storage or 'target-vmid' "
                "and 'target-disk' to move the disk to another VM",
            )
        self.check_file_lock(vm.vmid)
        self.check_lock(vm)
        if params.get("digest") and params["digest"] != vm.digest():
            raise PveError(500, "VM config digest mismatch: file changed by other user? Try again.")
        raw = vm.config.get(disk)
        if not raw:
            raise PveError(500, f"disk '{disk}' does not exist")
        unused = disk.startswith("unused")
        file = raw if unused else parse_drive(disk, raw).file
        if is_cloudinit_volume(file):
            raise PveError(500, "cannot move cloud-init disk")
        if not unused and parse_drive(disk, raw).is_cdrom:
            raise PveError(500, f"disk '{disk}' is a CD-ROM, it cannot be moved")
        node = self.nodes[vm.node]
        if storage_id:
            return self._move_to_storage(principal, vm, node, disk, raw, storage_id, params)
        target_vmid = int(target_raw or 0)
        target_disk = params.get("target-disk", disk)
        if target_vmid == vm.vmid:
            raise PveError(
                500,
                "You must provide a different target VM ID or a storage to move the disk to.",
            )
        target = self.vms.get(target_vmid)
        if target is None or target.node != vm.node:
            raise PveError(
                500,
                f"Configuration file 'nodes/{vm.node}/qemu-server/{target_vmid}.conf' does not exist",
            )
        self.check_file_lock(target_vmid)
        self.check_lock(target)
        if params.get("target-digest") and params["target-digest"] != target.digest():
            raise PveError(500, "VM config digest mismatch: file changed by other user? Try again.")
        if target_disk in target.config:
            raise PveError(500, f"target disk '{target_disk}' is already in use in VM {target_vmid}")
        if unused != target_disk.startswith("unused"):
            raise PveError(500, "can't reassign between an unused entry and an attached disk")
        if vm.status == "running" and not unused:
            raise PveError(500, f"cannot move disk '{disk}' of a running VM to another VM")
        if target.status == "running" and not target_disk.startswith("unused"):
            raise PveError(500, f"cannot attach a disk to the running VM {target_vmid}")
        if "delete" in params or "format" in params:
            key = "delete" if "delete" in params else "format"
            raise param_error({key: "not allowed when moving a disk to another VM"})

        def finish() -> str | None:
            current = vm.config.get(disk)
            if current != raw or target_disk in target.config or self.vms.get(target_vmid) is not target:
                return "configuration changed while the disk was being reassigned"
            storage, volname = self.storage_of_volid(node, file)
            size = storage.volumes.pop(volname)
            fmt = volname.rsplit(".", 1)[1] if "." in volname.rsplit("/", 1)[-1] else "raw"
            new_name = storage.new_volname(target_vmid, fmt=fmt)
            storage.volumes[new_name] = size
            new_file = f"{storage.id}:{new_name}"
            del vm.config[disk]
            if unused:
                target.config[target_disk] = new_file
            else:
                drive = parse_drive(disk, raw)
                target.config[target_disk] = Drive(target_disk, new_file, dict(drive.options)).value()
            return None

        task = self.start_task(vm.node, "qmmove", str(vm.vmid), principal.name, finish)
        task.log.append(f"reassigning disk '{disk}' of VM {vm.vmid} to VM {target_vmid} as '{target_disk}'")
        return task

    def _move_to_storage(
        self,
        principal: Principal,
        vm: SimVM,
        node: SimNode,
        disk: str,
        raw: str,
        storage_id: str,
        params: dict[str, str],
    ) -> SimTask:
        if disk.startswith("unused"):
            raise PveError(500, f"disk '{disk}' is not attached; reassign it or attach it first")
        if "target-disk" in params:
            raise param_error({"target-disk": "only allowed together with 'target-vmid'"})
        drive = parse_drive(disk, raw)
        self.storage(node, storage_id)
        size = self.volume_size(node, drive.file)

        def finish() -> str | None:
            try:
                volid = self.allocate(node, storage_id, vm.vmid, size, params.get("format"))
            except PveError as exc:
                return f"storage migration failed: {exc.message}"
            vm.config[disk] = Drive(disk, volid, dict(drive.options)).value()
            if _bool(params.get("delete", "0")):
                self.free_volume(node, drive.file)
            else:
                index = next(i for i in itertools.count() if f"unused{i}" not in vm.config)
                vm.config[f"unused{index}"] = drive.file
            return None

        return self.start_task(vm.node, "qmmove", str(vm.vmid), principal.name, finish)

    # --- power ---

    def power(self, principal: Principal, vm: SimVM, action: str, params: dict[str, str]) -> SimTask:
        self.check_lock(vm, _bool(params.get("skiplock", "0")))
        node = vm.node
        if action == "start":
            if vm.template:
                raise PveError(500, "you can't start a vm if it's a template")

            def start() -> str | None:
                if vm.status == "running":
                    return f"VM {vm.vmid} already running"
                self.apply_pending(vm)
                vm.status = "running"
                vm.started_at = self.now()
                return None

            return self.start_task(node, "qmstart", str(vm.vmid), principal.name, start)
        if action in ("reset", "reboot") and vm.status != "running":
            raise PveError(500, f"VM {vm.vmid} not running")
        if action == "stop":

            def stop() -> str | None:
                vm.status = "stopped"
                vm.started_at = None
                return None

            return self.start_task(node, "qmstop", str(vm.vmid), principal.name, stop)
        if action == "shutdown":
            timeout = float(params.get("timeout", "180"))
            force = _bool(params.get("forceStop", "0"))
            if vm.status != "running":
                return self.start_task(node, "qmshutdown", str(vm.vmid), principal.name, lambda: None)
            if vm.ignore_acpi:

                def ignored() -> str | None:
                    if force:
                        vm.status = "stopped"
                        return None
                    return "VM quit/powerdown failed - got timeout"

                return self.start_task(
                    node, "qmshutdown", str(vm.vmid), principal.name, ignored, seconds=timeout
                )

            def shutdown() -> str | None:
                vm.status = "stopped"
                vm.started_at = None
                return None

            return self.start_task(node, "qmshutdown", str(vm.vmid), principal.name, shutdown)
        if action == "reboot":

            def reboot() -> str | None:
                self.apply_pending(vm)
                vm.started_at = self.now()
                return None

            return self.start_task(node, "qmreboot", str(vm.vmid), principal.name, reboot)
        if action == "reset":
            return self.start_task(node, "qmreset", str(vm.vmid), principal.name, lambda: None)
        raise PveError(501, f"Method 'POST /nodes/{node}/qemu/{vm.vmid}/status/{action}' not implemented")

    # --- destroy ---

    def destroy(self, principal: Principal, vm: SimVM, params: dict[str, str]) -> SimTask:
        self.check_lock(vm, _bool(params.get("skiplock", "0")))
        if vm.status == "running":
            raise PveError(500, f"VM {vm.vmid} is running - destroy failed")
        if vm.config.get("protection") == "1":
            raise PveError(500, "can't remove VM - protection mode enabled")
        node = self.nodes[vm.node]
        vm.config["lock"] = "destroyed"

        def finish() -> str | None:
            for volid in self.vm_volumes(vm):
                self.free_volume(node, volid)
            if _bool(params.get("destroy-unreferenced-disks", "0")):
                for storage in node.storages.values():
                    for volname in [v for v in storage.volumes if re.search(rf"(^|/)vm-{vm.vmid}-", v)]:
                        del storage.volumes[volname]
            self.vms.pop(vm.vmid, None)
            return None

        return self.start_task(vm.node, "qmdestroy", str(vm.vmid), principal.name, finish)

    # --- reports ---

    def vm_disk_size(self, vm: SimVM) -> int:
        from vpsbridge.core.disks import system_disk

        key = system_disk(vm.config)
        if key is None:
            return 0
        drive = parse_drive(key, vm.config[key])
        return drive.size or 0

    def vm_status(self, vm: SimVM) -> dict[str, Any]:
        uptime = int(self.now() - vm.started_at) if vm.started_at is not None else 0
        running = vm.status == "running"
        out: dict[str, Any] = {
            "vmid": vm.vmid,
            "name": vm.config.get("name", f"VM {vm.vmid}"),
            "status": vm.status,
            "qmpstatus": vm.status,
            "cpus": vm.cores(),
            "maxmem": vm.memory_mb() * 1024**2,
            "mem": vm.memory_mb() * 1024**2 * 3 // 10 if running else 0,
            "maxdisk": self.vm_disk_size(vm),
            "disk": 0,
            "cpu": 0.05 if running else 0,
            "uptime": uptime,
            "netin": vm.netin + uptime * 1200,
            "netout": vm.netout + uptime * 800,
            "diskread": 0,
            "diskwrite": 0,
        }
        if vm.lock:
            out["lock"] = vm.lock
        if vm.template:
            out["template"] = 1
        if "tags" in vm.config:
            out["tags"] = vm.config["tags"]
        if running:
            out["pid"] = 10000 + vm.vmid
            out["agent"] = 1
        return out


_NET_MODELS = (
    "virtio",
    "e1000",
    "e1000e",
    "rtl8139",
    "vmxnet3",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
)


def _bool(value: str | None) -> bool:
    return (value or "0").lower() in ("1", "true", "yes", "on")


def _hotpluggable(key: str, hotplug: set[str]) -> bool:
    if key in ("cores", "sockets", "vcpus"):
        return "cpu" in hotplug
    if key in ("memory", "balloon"):
        return "memory" in hotplug
    if key in _CI_KEYS or re.fullmatch(r"ipconfig\d+", key):
        return "cloudinit" in hotplug
    if re.fullmatch(r"net\d+", key):
        return "network" in hotplug
    if re.fullmatch(r"(ide|sata|scsi|virtio)\d+|unused\d+", key):
        return "disk" in hotplug
    return key in ("name", "description", "tags", "onboot", "protection", "boot", "startup", "lock")


def _storage_map(value: str | None) -> dict[str, str]:
    """``targetstorage``: one id for everything, or ``src:dst`` pairs (``1`` = keep the same id)."""
    if not value:
        return {}
    out: dict[str, str] = {}
    for pair in re.split(r"[,;\s]+", value.strip()):
        if not pair:
            continue
        if ":" in pair:
            src, dst = pair.split(":", 1)
            out[src] = src if dst == "1" else dst
        else:
            out["*"] = pair
    return out


def random_hex(n: int = 8) -> str:
    return os.urandom(n).hex()
