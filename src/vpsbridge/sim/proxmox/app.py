"""The Proxmox VE API simulator as an ASGI app: ``/api2/json/...`` over a :class:`ProxmoxState`.

Every request goes through the same pipeline as pveproxy's: injected latency and faults, lazy task
progress, routing (501 for what is not implemented), authentication (token or ticket + CSRF), strict
parameter checking (400 with an ``errors`` map; unknown parameters are rejected as PVE 9 does), the
node being reachable (595 otherwise), permissions (403 naming the path and privilege), then the
handler. Answers use the ``{"data": ...}`` envelope; errors carry the message in a ``message`` field
(the reason phrase of real pveproxy cannot be set through ASGI).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import urllib.parse
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from vpsbridge.sim.proxmox import rrd
from vpsbridge.sim.proxmox.console import vncwebsocket
from vpsbridge.sim.proxmox.params import validate
from vpsbridge.sim.proxmox.state import Principal, ProxmoxState, PveError, SimVM, _bool

Handler = Callable[[Principal, dict[str, str]], Any]
PREFIX = "/api2/json"


class ProxmoxSimApp:
    """ASGI callable; ``app.state`` is the simulated cluster tests manipulate."""

    def __init__(self, state: ProxmoxState) -> None:
        self.state = state
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._register()

    # --- routing ---

    def route(self, method: str, template: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
        self.routes.append((method, re.compile(regex), template, handler))

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str], Handler] | None:
        for m, regex, template, handler in self.routes:
            match = regex.match(path)
            if match and m == method:
                params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                return template, params, handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            await vncwebsocket(self.state, scope, receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        sim = self.state
        method = request.method
        path = request.url.path
        if path.startswith("/_sim"):
            return await self.control(request, path[len("/_sim") :])
        if path.startswith(PREFIX):
            path = path[len(PREFIX) :] or "/"
        delay = sim.latency_for(method, path)
        if delay:
            await asyncio.sleep(delay)
        fault = sim.take_fault(method, path)
        if fault is not None:
            if fault.kind == "timeout":
                await asyncio.sleep(3600)
            if fault.kind == "reset":
                raise ConnectionResetError("connection reset by peer (injected)")
            return _error(PveError(fault.status, fault.message))
        sim.tick()
        found = self._match(method, path)
        if found is None:
            return _error(PveError(501, f"Method '{method} {PREFIX}{path}' not implemented"))
        endpoint, path_params, handler = found
        try:
            params = await _read_params(request)
        except ValueError as exc:
            return _error(PveError(400, str(exc)))
        sim.requests.append((method, path, dict(params)))
        try:
            principal = None
            if endpoint != "/access/ticket":
                principal = sim.authenticate({k.lower(): v for k, v in request.headers.items()}, method)
            for key, value in path_params.items():
                if key in params and params[key] != value:
                    raise PveError(400, "Parameter verification failed.", {key: "duplicate parameter"})
            merged = {**params, **path_params}
            errors = validate(f"{method} {endpoint}", merged, sim.param_tables)
            if errors:
                raise PveError(400, "Parameter verification failed.", errors)
            if "node" in path_params:
                sim.node(path_params["node"])
            result = handler(principal or Principal("anonymous@pam", None, frozenset()), merged)
            if asyncio.iscoroutine(result):
                result = await result
        except PveError as exc:
            return _error(exc)
        return JSONResponse({"data": result})

    # --- handlers ---

    def _register(self) -> None:
        sim = self.state
        r = self.route

        def vm_of(p: dict[str, str]) -> SimVM:
            return sim.vm(p["node"], int(p["vmid"]))

        def need(principal: Principal, p: dict[str, str], priv: str) -> None:
            path = f"/vms/{p['vmid']}" if "vmid" in p else "/"
            sim.require(principal, path, priv)

        r(
            "GET",
            "/version",
            lambda pr, p: {
                "version": sim.version,
                "release": sim.version.rsplit(".", 1)[0],
                "repoid": "f0e1d2c3",
            },
        )

        def ticket(pr: Principal, p: dict[str, str]) -> Any:
            return sim.login(p["username"], p["password"], p.get("realm"))

        r("POST", "/access/ticket", ticket)

        def permissions(pr: Principal, p: dict[str, str]) -> Any:
            privs = {priv: 1 for priv in sorted(pr.privileges)}
            return {"/": privs, "/vms": privs, "/storage": privs, "/nodes": privs}

        r("GET", "/access/permissions", permissions)

        def nextid(pr: Principal, p: dict[str, str]) -> Any:
            if "vmid" in p:
                vmid = int(p["vmid"])
                if vmid in sim.vms:
                    raise PveError(
                        400, "Parameter verification failed.", {"vmid": f"VM {vmid} already exists"}
                    )
                return str(vmid)
            return str(sim.next_id())

        r("GET", "/cluster/nextid", nextid)

        def resources(pr: Principal, p: dict[str, str]) -> Any:
            kind = p.get("type")
            out: list[dict[str, Any]] = []
            if kind in (None, "node"):
                for node in sim.nodes.values():
                    out.append(self._node_entry(node.name))
            if kind in (None, "vm"):
                for vm in sim.vms.values():
                    status = sim.vm_status(vm)
                    node_up = sim.nodes[vm.node].online
                    entry = {
                        "id": f"qemu/{vm.vmid}",
                        "type": "qemu",
                        "node": vm.node,
                        "template": 1 if vm.template else 0,
                        **{k: v for k, v in status.items() if k not in ("qmpstatus", "cpus", "pid", "agent")},
                        "maxcpu": vm.cores(),
                        "status": status["status"] if node_up else "unknown",
                    }
                    out.append(entry)
            if kind in (None, "storage"):
                for node in sim.nodes.values():
                    for storage in node.storages.values():
                        out.append(
                            {
                                "id": f"storage/{node.name}/{storage.id}",
                                "type": "storage",
                                "storage": storage.id,
                                "node": node.name,
                                "plugintype": storage.type,
                                "shared": 1 if storage.shared else 0,
                                "content": ",".join(storage.content),
                                "maxdisk": storage.total,
                                "disk": storage.used,
                                "status": "available" if node.online else "unknown",
                            }
                        )
            return out

        r("GET", "/cluster/resources", resources)
        r("GET", "/nodes", lambda pr, p: [self._node_entry(n) for n in sim.nodes])

        def node_status(pr: Principal, p: dict[str, str]) -> Any:
            node = sim.node(p["node"])
            used = self._node_mem_used(node.name)
            return {
                "memory": {"total": node.maxmem, "used": used, "free": node.maxmem - used},
                "cpuinfo": {"cpus": node.maxcpu, "sockets": 2, "model": "Simulated CPU"},
                "cpu": 0.05,
                "uptime": 86400,
                "pveversion": f"pve-manager/{sim.version}/f0e1d2c3",
                "kversion": "Linux 6.8.12-sim",
            }

        r("GET", "/nodes/{node}/status", node_status)

        def node_storage(pr: Principal, p: dict[str, str]) -> Any:
            node = sim.node(p["node"])
            sim.require(pr, "/storage", "Datastore.Audit")
            out = []
            for storage in node.storages.values():
                if p.get("storage") and storage.id != p["storage"]:
                    continue
                if p.get("content") and p["content"] not in storage.content:
                    continue
                out.append(
                    {
                        "storage": storage.id,
                        "type": storage.type,
                        "shared": 1 if storage.shared else 0,
                        "content": ",".join(storage.content),
                        "total": storage.total,
                        "used": storage.used,
                        "avail": storage.avail,
                        "active": 1,
                        "enabled": 1,
                        "used_fraction": storage.used / storage.total if storage.total else 0,
                    }
                )
            return out

        r("GET", "/nodes/{node}/storage", node_storage)

        def node_qemu(pr: Principal, p: dict[str, str]) -> Any:
            return [sim.vm_status(vm) for vm in sim.vms.values() if vm.node == p["node"]]

        r("GET", "/nodes/{node}/qemu", node_qemu)

        def get_config(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Audit")
            config: dict[str, Any] = dict(vm.config)
            if not _bool(p.get("current")):
                config.update(vm.pending)
                for key in vm.pending_delete:
                    config.pop(key, None)
            if "cipassword" in config:
                config["cipassword"] = "**********"  # Proxmox never returns the password
            config["digest"] = vm.digest()
            for key in ("cores", "sockets", "template", "onboot", "protection"):
                if key in config and str(config[key]).isdigit():
                    config[key] = int(config[key])
            return config

        r("GET", "/nodes/{node}/qemu/{vmid}/config", get_config)

        def pending(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Audit")
            out: list[dict[str, Any]] = []
            for key in sorted(set(vm.config) | set(vm.pending) | vm.pending_delete):
                entry: dict[str, Any] = {"key": key}
                if key in vm.config:
                    entry["value"] = vm.config[key]
                if key in vm.pending:
                    entry["pending"] = vm.pending[key]
                if key in vm.pending_delete:
                    entry["delete"] = 1
                out.append(entry)
            return out

        r("GET", "/nodes/{node}/qemu/{vmid}/pending", pending)

        def config_privilege(p: dict[str, str]) -> str:
            keys = set(p) - {"node", "vmid", "digest", "skiplock", "delete", "revert", "background_delay"}
            keys |= {k for k in re.split(r"[,;\s]+", p.get("delete", "")) if k}
            if any(re.fullmatch(r"(ide|sata|scsi|virtio)\d+|unused\d+|efidisk0", k) for k in keys):
                return "VM.Config.Disk"
            if any(k.startswith("net") for k in keys):
                return "VM.Config.Network"
            if any(k.startswith(("ci", "ipconfig")) or k in ("sshkeys", "nameserver") for k in keys):
                return "VM.Config.Cloudinit"
            if keys & {"cores", "sockets", "vcpus", "cpu", "cpulimit"}:
                return "VM.Config.CPU"
            if keys & {"memory", "balloon"}:
                return "VM.Config.Memory"
            return "VM.Config.Options"

        def post_config(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, config_privilege(p))
            sim.update_config(vm, sim.nodes[vm.node], p)
            return sim.start_task(vm.node, "qmconfig", str(vm.vmid), pr.name, None).upid

        def put_config(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, config_privilege(p))
            sim.update_config(vm, sim.nodes[vm.node], p)
            return None

        r("POST", "/nodes/{node}/qemu/{vmid}/config", post_config)
        r("PUT", "/nodes/{node}/qemu/{vmid}/config", put_config)

        def clone(pr: Principal, p: dict[str, str]) -> Any:
            need(pr, p, "VM.Clone")
            return sim.clone(pr, p["node"], int(p["vmid"]), p).upid

        r("POST", "/nodes/{node}/qemu/{vmid}/clone", clone)

        def migrate(pr: Principal, p: dict[str, str]) -> Any:
            need(pr, p, "VM.Migrate")
            return sim.migrate(pr, p["node"], int(p["vmid"]), p).upid

        r("POST", "/nodes/{node}/qemu/{vmid}/migrate", migrate)

        def resize(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Config.Disk")
            body = sim.resize(vm, sim.nodes[vm.node], p["disk"], p["size"])
            if int(sim.version.split(".")[0]) < 8:
                error = body()
                if error:
                    raise PveError(500, error)
                return None
            return sim.start_task(vm.node, "resize", str(vm.vmid), pr.name, body).upid

        r("PUT", "/nodes/{node}/qemu/{vmid}/resize", resize)

        def current(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Audit")
            return sim.vm_status(vm)

        r("GET", "/nodes/{node}/qemu/{vmid}/status/current", current)

        def power(action: str) -> Handler:
            def run(pr: Principal, p: dict[str, str]) -> Any:
                vm = vm_of(p)
                need(pr, p, "VM.PowerMgmt")
                return sim.power(pr, vm, action, p).upid

            return run

        for action in ("start", "stop", "shutdown", "reboot", "reset"):
            r("POST", "/nodes/{node}/qemu/{vmid}/status/" + action, power(action))

        def destroy(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Allocate")
            return sim.destroy(pr, vm, p).upid

        r("DELETE", "/nodes/{node}/qemu/{vmid}", destroy)

        def move_disk(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Config.Disk")
            if "target-vmid" in p:
                sim.require(pr, f"/vms/{p['target-vmid']}", "VM.Config.Disk")
            return sim.move_disk(pr, vm, p).upid

        r("POST", "/nodes/{node}/qemu/{vmid}/move_disk", move_disk)

        def fw_digest(vm: SimVM) -> str:
            return str(abs(hash(json.dumps([vm.firewall, vm.ipsets], sort_keys=True))))

        def fw_options(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Audit")
            out: dict[str, Any] = {k: int(v) if v.isdigit() else v for k, v in vm.firewall.items()}
            out["digest"] = fw_digest(vm)
            return out

        def fw_set_options(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Config.Network")
            if p.get("digest") and p["digest"] != fw_digest(vm):
                raise PveError(
                    500, "detected modified configuration - file changed by other user? Try again."
                )
            for key in (k for k in re.split(r"[,;\s]+", p.get("delete", "")) if k):
                vm.firewall.pop(key, None)
            for key, value in p.items():
                if key not in ("node", "vmid", "delete", "digest"):
                    vm.firewall[key] = (
                        "1"
                        if value in ("1", "true", "yes", "on")
                        and key
                        not in (
                            "policy_in",
                            "policy_out",
                            "log_level_in",
                            "log_level_out",
                        )
                        else ("0" if value in ("0", "false", "no", "off") else value)
                    )
            return None

        r("GET", "/nodes/{node}/qemu/{vmid}/firewall/options", fw_options)
        r("PUT", "/nodes/{node}/qemu/{vmid}/firewall/options", fw_set_options)

        def ipsets(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Audit")
            return [
                {"name": name, "comment": vm.ipset_comments.get(name, ""), "digest": fw_digest(vm)}
                for name in sorted(vm.ipsets)
            ]

        def create_ipset(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Config.Network")
            name = p["name"]
            if "rename" in p:
                if name not in vm.ipsets:
                    raise PveError(500, f"no such IPSet '{name}'")
                vm.ipsets[p["rename"]] = vm.ipsets.pop(name)
                return None
            if name in vm.ipsets:
                raise PveError(500, f"IPSet '{name}' already exists")
            vm.ipsets[name] = {}
            if p.get("comment"):
                vm.ipset_comments[name] = p["comment"]
            return None

        def ipset_entries(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Audit")
            if p["name"] not in vm.ipsets:
                raise PveError(500, f"no such IPSet '{p['name']}'")
            return [{"cidr": c, **e, "digest": fw_digest(vm)} for c, e in vm.ipsets[p["name"]].items()]

        def add_ipset_entry(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Config.Network")
            entries = vm.ipsets.get(p["name"])
            if entries is None:
                raise PveError(500, f"no such IPSet '{p['name']}'")
            cidr = p["cidr"]
            if cidr in entries:
                raise PveError(500, f"address '{cidr}' already exists")
            entry: dict[str, Any] = {}
            if p.get("comment"):
                entry["comment"] = p["comment"]
            if _bool(p.get("nomatch")):
                entry["nomatch"] = 1
            entries[cidr] = entry
            return None

        def delete_ipset(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Config.Network")
            entries = vm.ipsets.get(p["name"])
            if entries is None:
                return None
            if entries and not _bool(p.get("force")):
                raise PveError(500, "IPSet not empty")
            del vm.ipsets[p["name"]]
            return None

        def delete_ipset_entry(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Config.Network")
            entries = vm.ipsets.get(p["name"])
            if entries is None:
                raise PveError(500, f"no such IPSet '{p['name']}'")
            entries.pop(p["cidr"], None)
            return None

        base = "/nodes/{node}/qemu/{vmid}/firewall/ipset"
        r("GET", base, ipsets)
        r("POST", base, create_ipset)
        r("GET", base + "/{name}", ipset_entries)
        r("POST", base + "/{name}", add_ipset_entry)
        r("DELETE", base + "/{name}", delete_ipset)
        r("DELETE", base + "/{name}/{cidr}", delete_ipset_entry)

        def rrddata(pr: Principal, p: dict[str, str]) -> Any:
            vm = vm_of(p)
            need(pr, p, "VM.Audit")
            return rrd.rows(sim, vm, p["timeframe"])

        r("GET", "/nodes/{node}/qemu/{vmid}/rrddata", rrddata)

        def proxy(kind: str) -> Handler:
            def run(pr: Principal, p: dict[str, str]) -> Any:
                vm = vm_of(p)
                need(pr, p, "VM.Console")
                if kind == "vncproxy" and vm.status != "running":
                    raise PveError(500, f"VM {vm.vmid} not running")
                port = 5900 + len(sim.vnc_tickets) % 100
                ticket = f"PVEVNC:{secrets.token_hex(4).upper()}::{secrets.token_urlsafe(24)}"
                sim.vnc_tickets[ticket] = (vm.vmid, port, sim.now() + 40, pr.name)
                task = sim.start_task(vm.node, kind, str(vm.vmid), pr.name, None, seconds=40)
                out = {"port": str(port), "ticket": ticket, "user": pr.name, "upid": task.upid}
                if kind == "vncproxy":
                    out["cert"] = "-----BEGIN CERTIFICATE-----\nSIM\n-----END CERTIFICATE-----\n"
                return out

            return run

        r("POST", "/nodes/{node}/qemu/{vmid}/vncproxy", proxy("vncproxy"))
        r("POST", "/nodes/{node}/qemu/{vmid}/termproxy", proxy("termproxy"))

        def task_status(pr: Principal, p: dict[str, str]) -> Any:
            task = sim.task(p["node"], p["upid"])
            out: dict[str, Any] = {
                "upid": task.upid,
                "node": task.node,
                "type": task.type,
                "id": task.id,
                "user": task.user,
                "status": task.status,
                "starttime": task.starttime,
                "pid": int(task.upid.split(":")[2], 16),
                "pstart": int(task.upid.split(":")[3], 16),
            }
            if task.exitstatus is not None:
                out["exitstatus"] = task.exitstatus
            return out

        def task_log(pr: Principal, p: dict[str, str]) -> Any:
            task = sim.task(p["node"], p["upid"])
            start = int(p.get("start", "0"))
            limit = int(p.get("limit", "50")) or len(task.log)
            return [{"n": i + 1, "t": line} for i, line in enumerate(task.log)][start : start + limit]

        r("GET", "/nodes/{node}/tasks/{upid}/status", task_status)
        r("GET", "/nodes/{node}/tasks/{upid}/log", task_log)

    # --- test and demo knobs (not part of the Proxmox API) ---

    async def control(self, request: Request, path: str) -> Response:
        """``/_sim/...``: inspect the cluster and inject faults from outside the process.

        ``GET /_sim/state``; ``POST``/``DELETE /_sim/faults``; ``POST /_sim/latency``;
        ``POST /_sim/nodes/{name}`` (``online``); ``POST /_sim/vms/{vmid}`` (``ignore_acpi``,
        ``hold_lock_seconds``); ``POST /_sim/tasks`` (``type``, ``error``, ``times``);
        ``POST /_sim/settings`` (``time_scale``, ``file_lock_probability``, ``storage_lock_probability``).
        """
        sim = self.state
        body: dict[str, Any] = {}
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                return JSONResponse({"error": "body must be JSON"}, status_code=400)
        try:
            if request.method == "GET" and path == "/state":
                sim.tick()
                return JSONResponse(self.summary())
            if path == "/faults" and request.method == "DELETE":
                sim.faults.clear()
                return JSONResponse({"ok": True})
            if path == "/faults" and request.method == "POST":
                sim.add_fault(
                    str(body["path"]),
                    method=str(body.get("method", "*")),
                    kind=str(body.get("kind", "status")),
                    status=int(body.get("status", 500)),
                    message=body.get("message"),
                    times=int(body.get("times", 1)),
                    probability=float(body.get("probability", 1.0)),
                )
                return JSONResponse({"ok": True})
            if path == "/latency" and request.method == "POST":
                sim.set_latency(str(body["path"]), float(body["seconds"]), str(body.get("method", "*")))
                return JSONResponse({"ok": True})
            if path.startswith("/nodes/") and request.method == "POST":
                sim.set_node_online(path.split("/")[2], bool(body.get("online", True)))
                return JSONResponse({"ok": True})
            if path.startswith("/vms/") and request.method == "POST":
                vm = sim.vms[int(path.split("/")[2])]
                if "ignore_acpi" in body:
                    vm.ignore_acpi = bool(body["ignore_acpi"])
                if body.get("hold_lock_seconds"):
                    sim.hold_file_lock(vm.vmid, float(body["hold_lock_seconds"]))
                return JSONResponse({"ok": True})
            if path == "/tasks" and request.method == "POST":
                sim.fail_next_task(str(body["type"]), body.get("error"), int(body.get("times", 1)))
                return JSONResponse({"ok": True})
            if path == "/settings" and request.method == "POST":
                for key in ("time_scale", "file_lock_probability", "storage_lock_probability"):
                    if key in body:
                        setattr(sim, key, float(body[key]))
                return JSONResponse({"ok": True})
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        return JSONResponse({"error": "unknown simulator control"}, status_code=404)

    def summary(self) -> dict[str, Any]:
        sim = self.state
        return {
            "version": sim.version,
            "time_scale": sim.time_scale,
            "nodes": {
                node.name: {
                    "online": node.online,
                    "storages": {
                        st.id: {"type": st.type, "shared": st.shared, "total": st.total, "avail": st.avail}
                        for st in node.storages.values()
                    },
                }
                for node in sim.nodes.values()
            },
            "vms": [
                {
                    "vmid": vm.vmid,
                    "node": vm.node,
                    "status": vm.status,
                    "lock": vm.lock,
                    "template": vm.template,
                }
                for vm in sorted(sim.vms.values(), key=lambda v: v.vmid)
            ],
            "tasks_running": sum(1 for t in sim.tasks.values() if t.status == "running"),
            "requests": len(sim.requests),
        }

    # --- helpers ---

    def _node_mem_used(self, name: str) -> int:
        node = self.state.nodes[name]
        running = [vm for vm in self.state.vms.values() if vm.node == name and vm.status == "running"]
        return node.base_mem + sum(vm.memory_mb() * 1024**2 for vm in running)

    def _node_entry(self, name: str) -> dict[str, Any]:
        node = self.state.nodes[name]
        entry: dict[str, Any] = {"id": f"node/{name}", "type": "node", "node": name}
        entry["status"] = "online" if node.online else "offline"
        if node.online:
            entry.update(
                {
                    "maxcpu": node.maxcpu,
                    "maxmem": node.maxmem,
                    "mem": self._node_mem_used(name),
                    "cpu": 0.05,
                    "uptime": 86400,
                    "maxdisk": 100 * 1024**3,
                    "disk": 10 * 1024**3,
                    "level": "",
                }
            )
        return entry


def _error(exc: PveError) -> Response:
    body: dict[str, Any] = {"data": None, "message": exc.message}
    if exc.errors:
        body["errors"] = exc.errors
    return JSONResponse(body, status_code=exc.status)


async def _read_params(request: Request) -> dict[str, str]:
    """Query string plus a form or JSON body, as pveproxy accepts them."""
    params: dict[str, str] = dict(request.query_params)
    if request.method in ("POST", "PUT"):
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        if raw and "json" in ctype:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("NOT A HASH REFERENCE")
            params.update({k: _json_value(v) for k, v in body.items()})
        elif raw:
            params.update(dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True)))
    return params


def _json_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def create_app(state: ProxmoxState | None = None) -> ProxmoxSimApp:
    return ProxmoxSimApp(state or ProxmoxState())
