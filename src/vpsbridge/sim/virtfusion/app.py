"""The VirtFusion API v1 simulator as an ASGI app (Starlette), for the demo, tests and benchmarks.

Every request passes one gate (:func:`create_app`'s ``guarded``): it is recorded, per-endpoint
faults fire (status, hang, malformed body, latency, 429), the bearer token is checked (401 with the
spec's plain ``401 Unauthorized`` body), the permission the endpoint needs is checked (403 naming
it), due queue tasks finish, and :class:`SimError` becomes ``{"msg": ...}`` or ``{"errors": [...]}``.

Knobs are reachable from tests (``app.state.virtfusion``) and over HTTP under ``/_sim`` (no token):
``GET /_sim/state``, ``POST /_sim/faults`` (a :class:`Fault` as JSON), ``DELETE /_sim/faults``,
``POST /_sim/settings`` (``task_seconds``, ``ipv6_delay_seconds``, ``time_scale``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from vpsbridge.platforms.virtfusion.scopes import scope_for
from vpsbridge.sim.console import serve_console
from vpsbridge.sim.virtfusion import render, self_service
from vpsbridge.sim.virtfusion import traffic as traffic_history
from vpsbridge.sim.virtfusion.state import (
    Credit,
    Fault,
    Server,
    SimError,
    SshKey,
    TrafficBlock,
    VirtFusionState,
    utcnow,
)

Handler = Callable[[Request], Awaitable[Response]]
PREFIX = "/api/v1"
SWAP_SIZES = {256, 512, 768, 1, 1.5, 2, 3, 4, 5, 6, 8}


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def empty(status: int = 204) -> Response:
    return Response(status_code=status)


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise SimError(400, "malformed JSON body") from None
    if not isinstance(body, dict):
        raise SimError(422, "invalid body", errors=["The request body must be a JSON object."])
    return body


def int_field(
    body: dict[str, Any], name: str, *, required: bool = True, minimum: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise SimError(422, f"{name} required", errors=[f"The {name} field is required."])
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SimError(422, f"{name} integer", errors=[f"The {name} must be an integer."])
    try:
        number = int(value)
    except ValueError:
        raise SimError(422, f"{name} integer", errors=[f"The {name} must be an integer."]) from None
    if minimum is not None and number < minimum:
        raise SimError(422, f"{name} min", errors=[f"The {name} must be at least {minimum}."])
    return number


def path_int(request: Request, name: str) -> int:
    try:
        return int(request.path_params[name])
    except (KeyError, ValueError):
        raise SimError(404, "not found") from None


def create_app(state: VirtFusionState | None = None) -> Starlette:
    """An app serving ``/api/v1/...``; ``app.state.virtfusion`` is the :class:`VirtFusionState`."""
    sim = state or VirtFusionState().seed_demo()

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            method, path = request.method, request.url.path
            response = await _answer(handler, request, method, path)
            sim.requests.append((method, path, response.status_code))
            return response

        return run

    async def _answer(handler: Handler, request: Request, method: str, path: str) -> Response:
        relative = path.removeprefix(PREFIX)
        for fault in list(sim.faults):
            if not fault.matches(method, relative):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    sim.faults.remove(fault)
            if fault.kind == "latency":
                await asyncio.sleep(fault.seconds)
                break
            if fault.kind == "timeout":
                await asyncio.sleep(fault.seconds or 3600)
                return Response("", status_code=504)
            if fault.kind == "malformed":
                return Response('{"data": {"id": 1', status_code=200, media_type="application/json")
            if fault.kind == "rate_limit":
                headers = {"Retry-After": str(max(0, int(fault.seconds)))}
                return JSONResponse({"msg": "Too Many Attempts."}, status_code=429, headers=headers)
            return JSONResponse({"msg": "Server Error"}, status_code=fault.status)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if token not in sim.tokens:
            return Response("401 Unauthorized", status_code=401, media_type="application/octet-stream")
        granted = sim.tokens[token]
        needed = scope_for(method, relative)
        if granted is not None and needed is not None and needed not in granted:
            return JSONResponse({"msg": "This action is unauthorized."}, status_code=403)
        try:
            sim.tick()
            return await handler(request)
        except SimError as exc:
            return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    # --- connection, compute, catalogue ---------------------------------------------------------

    def page_args(request: Request) -> tuple[int, int]:
        try:
            per_page = int(request.query_params.get("results", 20))
            page = int(request.query_params.get("page", 1))
        except ValueError:
            raise SimError(422, "results", errors=["The results must be an integer."]) from None
        if not 1 <= per_page <= 200:
            raise SimError(422, "results", errors=["The results must be between 1 and 200."])
        return max(1, page), per_page

    async def connect(request: Request) -> Response:
        return ok([])

    async def groups(request: Request) -> Response:
        page, per_page = page_args(request)
        items = [render.group(g) for g in sim.groups.values()]
        return ok(
            render.paginate(
                items,
                page=page,
                per_page=per_page,
                url=str(request.url.remove_query_params(["page", "results"])),
            )
        )

    async def group_one(request: Request) -> Response:
        g = sim.groups.get(path_int(request, "gid"))
        if g is None:
            raise SimError(404, "hypervisor group not found")
        return ok({"data": render.group(g)})

    async def group_resources(request: Request) -> Response:
        gid = path_int(request, "gid")
        if gid not in sim.groups:
            raise SimError(404, "hypervisor group not found")
        page, per_page = page_args(request)
        items = [
            {
                "hypervisor": {
                    "id": hv.id,
                    "name": hv.name,
                    "enabled": hv.enabled,
                    "prohibit": hv.prohibit,
                    "accept": False,
                    "commissioned": hv.commissioned,
                },
                "resources": sim.resources(hv),
            }
            for hv in sim.hypervisors.values()
            if hv.group_id == gid
        ]
        url = str(request.url.remove_query_params(["page", "results"]))
        return ok(render.paginate(items, page=page, per_page=per_page, url=url))

    async def packages(request: Request) -> Response:
        return ok({"data": [render.package(p) for p in sim.packages.values()]})

    async def package_one(request: Request) -> Response:
        p = sim.packages.get(path_int(request, "pid"))
        if p is None:
            raise SimError(404, "package not found")
        return ok({"data": render.package(p)})

    async def templates_for_package(request: Request) -> Response:
        pid = path_int(request, "pid")
        if pid not in sim.packages:
            raise SimError(404, "package not found")
        allowed = [t for t in sim.templates.values() if not t.packages or pid in t.packages]
        return ok({"data": render.template_categories(allowed)})

    async def queue_one(request: Request) -> Response:
        task = sim.tasks.get(path_int(request, "qid"))
        if task is None:
            raise SimError(404, "queue item not found")
        return ok({"data": render.queue_task(task, sim.now())})

    # --- users and keys -------------------------------------------------------------------------

    async def user_by_ext(request: Request) -> Response:
        return ok({"data": render.user(sim.user_by_ext(path_int(request, "ext")))})

    async def user_create(request: Request) -> Response:
        body = await body_of(request)
        name, email = str(body.get("name") or "").strip(), str(body.get("email") or "").strip()
        errors = [f"The {f} field is required." for f, v in (("name", name), ("email", email)) if not v]
        if errors:
            raise SimError(422, "invalid", errors=errors)
        if "@" not in email:
            raise SimError(422, "invalid", errors=["The email must be a valid email address."])
        ext = int_field(body, "extRelationId", required=False)
        user = sim.create_user(name, email, ext, int(body.get("selfService") or 0))
        return ok({"data": render.user(user, password=secrets.token_urlsafe(22))}, 201)

    async def user_reset_password(request: Request) -> Response:
        user = sim.user_by_ext(path_int(request, "ext"))
        return ok({"data": {"email": user.email, "password": secrets.token_urlsafe(16)}}, 201)

    async def server_tokens(request: Request) -> Response:
        user = sim.user_by_ext(path_int(request, "ext"))
        server = sim.server(path_int(request, "sid"))
        if server.owner_id != user.id:
            raise SimError(404, "server not found")
        one, two = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
        expires = utcnow().timestamp() + 60
        return ok(
            {
                "data": {
                    "authentication": {
                        "tokens": {"1": one, "2": two},
                        "endpoint": "/token_authenticate",
                        "endpoint_complete": f"/token_authenticate/?1={one}&2={two}",
                        "expiry": {
                            "ttl": 60,
                            "expires": utcnow().fromtimestamp(expires, tz=utcnow().tzinfo).isoformat(),
                        },
                    }
                }
            }
        )

    async def ssh_key_create(request: Request) -> Response:
        body = await body_of(request)
        user_id = int_field(body, "userId")
        name, public = str(body.get("name") or ""), str(body.get("publicKey") or "").strip()
        if user_id not in sim.users:
            raise SimError(422, "user", errors=["The selected user id is invalid."])
        if not name or not public.startswith(("ssh-", "ecdsa-", "sk-")) or len(public.split()) < 2:
            raise SimError(422, "key", errors=["The public key is not a valid OpenSSH public key."])
        key = SshKey(id=sim.next_id("sshkey"), user_id=int(user_id or 0), name=name, public_key=public)
        sim.ssh_keys[key.id] = key
        created = key.created.isoformat().replace("+00:00", ".000000Z")
        return ok({"data": {"id": key.id, "name": key.name, "type": "OpenSSH", "createdAt": created}}, 201)

    async def ssh_keys_of_user(request: Request) -> Response:
        uid = path_int(request, "uid")
        keys = [k for k in sim.ssh_keys.values() if k.user_id == uid]
        return ok(
            {
                "data": [
                    {
                        "id": k.id,
                        "name": k.name,
                        "publicKey": k.public_key,
                        "type": "OpenSSH",
                        "enabled": True,
                        "created": k.created.isoformat(),
                        "updated": k.created.isoformat(),
                    }
                    for k in keys
                ]
            }
        )

    # --- servers --------------------------------------------------------------------------------

    async def server_create(request: Request) -> Response:
        body = await body_of(request)
        package_id = int_field(body, "packageId")
        user_id = int_field(body, "userId")
        group_id = int_field(body, "hypervisorId")
        pkg = sim.packages.get(int(package_id or 0))
        if pkg is None or not pkg.enabled:
            raise SimError(422, "package", errors=["Invalid or disabled package"])
        if user_id not in sim.users:
            raise SimError(422, "user", errors=["The selected user id is invalid."])
        for ruleset in body.get("firewallRulesets") or []:
            if ruleset not in (-1, 1, 2):
                raise SimError(422, "firewall", errors=["Invalid or disabled firewall ruleset"])
        ipv4 = int_field(body, "ipv4", required=False, minimum=0)
        memory = int_field(body, "memory", required=False, minimum=128) or pkg.memory
        cores = int_field(body, "cpuCores", required=False, minimum=1) or pkg.cpu_cores
        storage = int_field(body, "storage", required=False, minimum=1) or pkg.storage
        traffic = int_field(body, "traffic", required=False, minimum=0)
        extra_storage = sum(
            int_field(body, f"additionalStorage{n}Capacity", required=False, minimum=0) or 0
            for n in (1, 2)
            if body.get(f"additionalStorage{n}Enable")
        )
        count = 1 if ipv4 is None else ipv4
        hv = sim.place(int(group_id or 0), memory, cores, storage + extra_storage, count)
        if request.query_params.get("dryRun") in ("true", "1"):
            return ok({"data": {"valid": True, "hypervisorId": hv.id}}, 201)
        server = Server(
            id=sim.next_id("server", 1),
            owner_id=int(user_id or 0),
            hypervisor_id=hv.id,
            package_id=pkg.id,
            memory=memory,
            cpu_cores=cores,
            storage=storage + extra_storage,
            traffic=pkg.traffic if traffic is None else traffic,
            speed_in=int_field(body, "networkSpeedInbound", required=False, minimum=0) or pkg.speed_in,
            speed_out=int_field(body, "networkSpeedOutbound", required=False, minimum=0) or pkg.speed_out,
            storage_profile=int_field(body, "storageProfile", required=False) or pkg.storage_profile,
            network_profile=int_field(body, "networkProfile", required=False) or pkg.network_profile,
            ipv4=sim.free_ipv4(hv)[:count],
            vnc_port=5900 + len(sim.on(hv)) + 1,
        )
        sim.servers[server.id] = server
        return ok({"data": render.server(server, sim)}, 201)

    async def server_get(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        live = request.query_params.get("remoteState") in ("true", "1")
        return ok({"data": render.server(server, sim, remote_state=live)})

    async def server_delete(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        sim.ensure_unlocked(server)
        try:
            delay = int(request.query_params.get("delay", 5))
        except ValueError:
            raise SimError(422, "delay", errors=["The delay must be an integer."]) from None
        if not 0 <= delay <= 43800:
            raise SimError(422, "delay", errors=["The delay must be between 0 and 43800."])
        if delay == 0:
            del sim.servers[server.id]
        else:
            server.delete_at = sim.now() + sim.scaled(delay * 60)
        return empty()

    async def server_build(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        sim.ensure_unlocked(server)
        if server.suspended:
            raise SimError(422, "suspended", errors=["The server is suspended."])
        body = await body_of(request)
        os_id = int_field(body, "operatingSystemId")
        template = sim.templates.get(int(os_id or 0))
        if template is None or (template.packages and server.package_id not in template.packages):
            raise SimError(
                422, "os", errors=["The selected operating system is not available for this server."]
            )
        keys = body.get("sshKeys") or []
        if not isinstance(keys, list) or any(
            not isinstance(k, int)
            or sim.ssh_keys.get(k) is None
            or sim.ssh_keys[k].user_id != server.owner_id
            for k in keys
        ):
            raise SimError(422, "keys", errors=["One or more SSH keys are invalid for this user."])
        swap = body.get("swap")
        if swap is not None and swap not in SWAP_SIZES:
            raise SimError(422, "swap", errors=["The selected swap is invalid."])
        hostname = body.get("hostname")
        if hostname is not None and (not isinstance(hostname, str) or not hostname.strip()):
            raise SimError(422, "hostname", errors=["The hostname format is invalid."])
        server.name = str(body.get("name") or server.name or f"server-{server.id}")
        server.hostname = hostname or server.hostname
        server.os_template_id = template.id
        server.os_type = template.type
        server.ssh_key_ids = list(keys)
        server.password = secrets.token_urlsafe(15)
        server.state = "queued"
        server.commission_status = 1
        server.power = "stopped"
        server.ipv6_visible_at = None
        server.updated = utcnow()

        def built() -> None:
            server.state = "complete"
            server.commission_status = 3
            server.built = utcnow()
            server.power = "running"
            server.ipv6_subnet = f"{sim.hypervisors[server.hypervisor_id].ipv6_prefix}:{server.id:x}::"
            server.ipv6_visible_at = sim.now() + sim.scaled(sim.ipv6_delay_seconds)

        sim.start_task(server, "build_server", built)
        return ok({"data": render.server(server, sim, password=True)})

    def toggle_suspend(value: bool) -> Handler:
        async def handler(request: Request) -> Response:
            server = sim.server(path_int(request, "sid"))
            sim.ensure_unlocked(server)
            server.suspended = value
            server.updated = utcnow()
            return empty()

        return handler

    async def server_change_package(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        sim.ensure_unlocked(server)
        pkg = sim.packages.get(path_int(request, "pid"))
        if pkg is None or not pkg.enabled:
            raise SimError(404, "package not found")
        hv = sim.hypervisors[server.hypervisor_id]
        grow_mem, grow_cpu = max(0, pkg.memory - server.memory), max(0, pkg.cpu_cores - server.cpu_cores)
        grow_disk = max(0, pkg.storage - server.storage)
        if not sim.fits(hv, grow_mem, grow_cpu, grow_disk, 0, servers=0):
            raise SimError(422, "capacity", errors=["The hypervisor does not have enough free resources."])
        info: list[str] = []
        if pkg.cpu_cores == server.cpu_cores:
            info.append("CPU cores not updated. They match the current value.")
        server.cpu_cores, server.memory = pkg.cpu_cores, pkg.memory
        if pkg.storage > server.storage:
            server.storage = pkg.storage
        else:
            info.append("primary disk not updated. It either matches or is lower than the current size.")
        server.traffic, server.package_id = pkg.traffic, pkg.id
        server.speed_in, server.speed_out = pkg.speed_in, pkg.speed_out
        server.updated = utcnow()
        return ok({"info": info})

    async def server_modify(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        sim.ensure_unlocked(server)
        what = request.path_params["what"]
        body = await body_of(request)
        hv = sim.hypervisors[server.hypervisor_id]
        if what == "name":
            name = str(body.get("name") or "")
            if not name or len(name) > 63 or any(ord(c) < 32 for c in name):
                raise SimError(422, "name", errors=["The name must be 1-63 printable characters."])
            server.name = name
        elif what == "memory":
            memory = int(int_field(body, "memory", minimum=128) or 0)
            if not sim.fits(hv, max(0, memory - server.memory), 0, 0, 0, servers=0):
                raise SimError(422, "capacity", errors=["The hypervisor does not have enough free memory."])
            server.memory = memory
        elif what == "cpuCores":
            cores = int(int_field(body, "cores", minimum=1) or 0)
            if not sim.fits(hv, 0, max(0, cores - server.cpu_cores), 0, 0, servers=0):
                raise SimError(
                    422, "capacity", errors=["The hypervisor does not have enough free CPU cores."]
                )
            server.cpu_cores = cores
        elif what == "traffic":
            traffic = int_field(body, "traffic", minimum=0)
            if traffic is None or traffic > 999999999:
                raise SimError(422, "traffic", errors=["The traffic must be between 0 and 999999999."])
            server.traffic = traffic
        else:
            raise SimError(404, "not found")
        server.updated = utcnow()
        return empty(201)

    async def server_reset_password(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        sim.ensure_unlocked(server)
        body = await body_of(request)
        user = body.get("user")
        if user not in ("root", "Administrator"):
            raise SimError(
                422, "user", errors=["The user field is required and must be root or Administrator."]
            )
        if server.state != "complete":
            raise SimError(422, "not built", errors=["The server has not been built."])
        expected = secrets.token_urlsafe(15)

        def done() -> None:
            server.password = expected

        task = sim.start_task(server, "reset_password", done)
        return ok({"data": {"queueId": task.id, "expectedPassword": expected}})

    async def server_power(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        sim.ensure_unlocked(server)
        verb = request.path_params["verb"]
        if verb not in ("boot", "shutdown", "restart", "poweroff"):
            raise SimError(404, "not found")
        if server.suspended:
            raise SimError(422, "suspended", errors=["The server is suspended."])
        if server.state != "complete":
            raise SimError(422, "not built", errors=["The server has not been built."])
        target = "running" if verb in ("boot", "restart") else "stopped"

        def done() -> None:
            server.power = target

        task = sim.start_task(server, f"power_{verb}", done, seconds=sim.task_seconds / 2)
        return ok({"data": {"queueId": task.id}})

    def vnc_body(server: Server) -> dict[str, Any]:
        hv = sim.hypervisors[server.hypervisor_id]
        return {
            "ip": hv.ip,
            "hostname": None,
            "port": server.vnc_port,
            "password": server.vnc_password,
            "wss": {"token": server.vnc_token, "url": f"/vnc/?token={server.vnc_token}"},
            "enabled": server.vnc_enabled,
        }

    async def vnc_get(request: Request) -> Response:
        return ok({"data": {"vnc": vnc_body(sim.server(path_int(request, "sid")))}})

    async def vnc_post(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        body = await body_of(request)
        action = body.get("action")
        if action not in ("enable", "disable"):
            raise SimError(422, "action", errors=["The selected action is invalid."])
        server.vnc_enabled = action == "enable"
        if server.vnc_enabled:
            import uuid

            server.vnc_token = str(uuid.uuid4())
            server.vnc_password = secrets.token_urlsafe(6)
        return ok({"data": {"vnc": vnc_body(server), "queueId": None}})

    async def vnc_websocket(websocket: WebSocket) -> None:
        """The panel's console websocket: the token of the latest enable, then VNC authentication."""
        token = websocket.query_params.get("token", "")
        server = next(
            (s for s in sim.servers.values() if s.vnc_enabled and token and s.vnc_token == token), None
        )
        sim.requests.append(("WEBSOCKET", "/vnc/", 101 if server else 403))
        if server is None:
            await websocket.close(code=1008)  # before accept: the upgrade is refused with 403
            return
        await serve_console(websocket, password=server.vnc_password, backend=sim.console_backend)

    async def traffic(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        return ok({"data": {"monthly": traffic_history.monthly(server, utcnow())}})

    async def blocks_get(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        start, end = render.period(server.created)
        months = {}
        for n in range(1, 13):
            m_start = start.replace(month=(start.month + n - 2) % 12 + 1) if n > 1 else start
            months[str(n)] = {
                "month": n,
                "start": m_start.strftime("%Y-%m-%d %H:%M:%S"),
                "end": end.strftime("%Y-%m-%d %H:%M:%S"),
            }
        assigned = [
            {
                "id": b.id,
                "current": b.month == 1,
                "month": b.month,
                "traffic": b.amount_gb,
                "start": start.strftime("%Y-%m-%d %H:%M:%S"),
                "end": end.strftime("%Y-%m-%d %H:%M:%S"),
                "added": b.added.isoformat().replace("+00:00", ".000000Z"),
            }
            for b in server.blocks
        ]
        return ok(
            {
                "data": {
                    "assigned": assigned,
                    "available": {"total": 12, "current": months["1"], "months": months},
                }
            }
        )

    async def blocks_post(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        body = await body_of(request)
        month = int(int_field(body, "month", minimum=1) or 1)
        amount = int(int_field(body, "amount", minimum=1) or 1)
        server.blocks.append(TrafficBlock(id=sim.next_id("block"), month=month, amount_gb=amount))
        return empty(201)

    async def blocks_delete(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        block_id = path_int(request, "bid")
        before = len(server.blocks)
        server.blocks = [b for b in server.blocks if b.id != block_id]
        if len(server.blocks) == before:
            raise SimError(404, "traffic block not found")
        return empty()

    async def backups(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        return ok({"data": server.backups})

    async def ipv4_qty(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        sim.ensure_unlocked(server)
        body = await body_of(request)
        if body.get("interface") not in ("primary", "secondary"):
            raise SimError(422, "interface", errors=["The selected interface is invalid."])
        qty = int(int_field(body, "quantity", minimum=1) or 1)
        free = sim.free_ipv4(sim.hypervisors[server.hypervisor_id])
        if len(free) < qty:
            raise SimError(422, "ipv4", errors=["Not enough free IPv4 addresses."])
        server.ipv4.extend(free[:qty])
        return ok({"data": free[:qty]})

    async def ipv4_delete(request: Request) -> Response:
        server = sim.server(path_int(request, "sid"))
        sim.ensure_unlocked(server)
        body = await body_of(request)
        ips = body.get("ip")
        if body.get("interface") not in ("primary", "secondary") or not isinstance(ips, list) or not ips:
            raise SimError(422, "ip", errors=["The interface and ip fields are required."])
        unknown = [ip for ip in ips if ip not in server.ipv4]
        if unknown:
            raise SimError(422, "ip", errors=[f"The address {unknown[0]} is not assigned to this server."])
        server.ipv4 = [ip for ip in server.ipv4 if ip not in ips]
        return empty()

    # --- self service ---------------------------------------------------------------------------

    async def ss_usage(request: Request) -> Response:
        user = sim.user_by_ext(path_int(request, "ext"))
        range_ = request.query_params.get("range", "month")
        return ok({"data": self_service.usage(sim, user, utcnow(), range_)})

    async def ss_report(request: Request) -> Response:
        user = sim.user_by_ext(path_int(request, "ext"))
        back = request.query_params.get("period", "0")
        if not back.isdigit() or int(back) > 24:
            raise SimError(422, "period", errors=["The period must be a number from 0 to 24."])
        return ok({"data": self_service.report(sim, user, utcnow(), int(back))})

    async def ss_hourly(request: Request) -> Response:
        user = sim.user_by_ext(path_int(request, "ext"))
        return ok({"data": self_service.hourly_stats(sim, user, utcnow())})

    async def ss_credit(request: Request) -> Response:
        user = sim.user_by_ext(path_int(request, "ext"))
        body = await body_of(request)
        tokens = body.get("tokens")
        if isinstance(tokens, bool) or not isinstance(tokens, int | float) or tokens <= 0:
            raise SimError(422, "tokens", errors=["The tokens must be a number greater than 0."])
        ref1 = body.get("reference_1")
        if ref1 is not None and (isinstance(ref1, bool) or not isinstance(ref1, int)):
            raise SimError(422, "reference_1", errors=["The reference 1 must be an integer."])
        credit = Credit(
            id=sim.next_id("credit"),
            user_id=user.id,
            tokens=float(tokens),
            reference_1=ref1,
            reference_2=body.get("reference_2"),
        )
        sim.credits[credit.id] = credit
        return ok({"data": {"id": credit.id}}, 201)

    # --- simulator admin ------------------------------------------------------------------------

    async def admin_state(request: Request) -> Response:
        sim.tick()
        return ok(
            {
                "groups": len(sim.groups),
                "hypervisors": len(sim.hypervisors),
                "servers": sorted(sim.servers),
                "users": len(sim.users),
                "faults": [f.__dict__ for f in sim.faults],
                "task_seconds": sim.task_seconds,
                "ipv6_delay_seconds": sim.ipv6_delay_seconds,
                "time_scale": sim.time_scale,
            }
        )

    async def admin_faults(request: Request) -> Response:
        if request.method == "DELETE":
            sim.faults.clear()
            return empty()
        try:
            fault = Fault(**json.loads(await request.body()))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"msg": f"invalid fault: {exc}"}, status_code=422)
        sim.faults.append(fault)
        return ok(fault.__dict__, 201)

    async def admin_settings(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        for key in ("task_seconds", "ipv6_delay_seconds", "time_scale"):
            if key in body:
                setattr(sim, key, float(body[key]))
        return await admin_state(request)

    def api(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(PREFIX + path, guarded(handler), methods=methods)

    routes = [
        api("/connect", connect, ["GET"]),
        api("/compute/hypervisors/groups", groups, ["GET"]),
        api("/compute/hypervisors/groups/{gid}", group_one, ["GET"]),
        api("/compute/hypervisors/groups/{gid}/resources", group_resources, ["GET"]),
        api("/packages", packages, ["GET"]),
        api("/packages/{pid}", package_one, ["GET"]),
        api("/media/templates/fromServerPackageSpec/{pid}", templates_for_package, ["GET"]),
        api("/queue/{qid}", queue_one, ["GET"]),
        api("/users", user_create, ["POST"]),
        api("/users/{ext}/byExtRelation", user_by_ext, ["GET"]),
        api("/users/{ext}/byExtRelation/resetPassword", user_reset_password, ["POST"]),
        api("/users/{ext}/serverAuthenticationTokens/{sid}", server_tokens, ["POST"]),
        api("/ssh_keys", ssh_key_create, ["POST"]),
        api("/ssh_keys/user/{uid}", ssh_keys_of_user, ["GET"]),
        api("/servers", server_create, ["POST"]),
        api("/servers/{sid}", server_get, ["GET"]),
        api("/servers/{sid}", server_delete, ["DELETE"]),
        api("/servers/{sid}/build", server_build, ["POST"]),
        api("/servers/{sid}/suspend", toggle_suspend(True), ["POST"]),
        api("/servers/{sid}/unsuspend", toggle_suspend(False), ["POST"]),
        api("/servers/{sid}/package/{pid}", server_change_package, ["PUT"]),
        api("/servers/{sid}/modify/{what}", server_modify, ["PUT"]),
        api("/servers/{sid}/resetPassword", server_reset_password, ["POST"]),
        api("/servers/{sid}/power/{verb}", server_power, ["POST"]),
        api("/servers/{sid}/vnc", vnc_get, ["GET"]),
        api("/servers/{sid}/vnc", vnc_post, ["POST"]),
        api("/servers/{sid}/traffic", traffic, ["GET"]),
        api("/servers/{sid}/traffic/blocks", blocks_get, ["GET"]),
        api("/servers/{sid}/traffic/blocks", blocks_post, ["POST"]),
        api("/servers/{sid}/traffic/blocks/{bid}", blocks_delete, ["DELETE"]),
        api("/servers/{sid}/ipv4Qty", ipv4_qty, ["POST"]),
        api("/servers/{sid}/ipv4", ipv4_delete, ["DELETE"]),
        api("/backups/server/{sid}", backups, ["GET"]),
        api("/selfService/usage/byUserExtRelationId/{ext}", ss_usage, ["GET"]),
        api("/selfService/report/byUserExtRelationId/{ext}", ss_report, ["GET"]),
        api("/selfService/hourlyStats/byUserExtRelationId/{ext}", ss_hourly, ["GET"]),
        api("/selfService/credit/byUserExtRelationId/{ext}", ss_credit, ["POST"]),
        WebSocketRoute("/vnc/", vnc_websocket),
        Route("/_sim/state", admin_state, methods=["GET"]),
        Route("/_sim/faults", admin_faults, methods=["POST", "DELETE"]),
        Route("/_sim/settings", admin_settings, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.virtfusion = sim
    return app
