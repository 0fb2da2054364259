"""The simulated ``GET /nodes/{node}/qemu/{vmid}/vncwebsocket`` (a websocket upgrade), as Proxmox VE does it.

PVE checks, before upgrading: an authenticated caller (API token or ticket cookie) with
``VM.Console`` on the VM, and a ``vncticket`` that the *same* user obtained from ``vncproxy`` for
*this* VM and port, used within 40 seconds (``verify_vnc_ticket``). The vncproxy listener behind it
accepts one connection, so a ticket opens one console. Inside the websocket the RFB stream asks for
VNC authentication with the vncticket as password, which is what noVNC - or the portal's relay -
answers with. Refusals are plain HTTP answers to the upgrade, like PVE's (401 for a bad ticket).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from vpsbridge.sim.console import serve_console
from vpsbridge.sim.proxmox.state import ProxmoxState, PveError

PATH = re.compile(r"^/api2/json/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>\d+)/vncwebsocket$")


def _check(sim: ProxmoxState, websocket: WebSocket) -> str:
    """The VNC password (the ticket) when the upgrade is allowed; :class:`PveError` otherwise."""
    match = PATH.match(websocket.url.path)
    if match is None:
        raise PveError(501, f"Method 'GET {websocket.url.path}' not implemented")
    node, vmid = match["node"], int(match["vmid"])
    principal = sim.authenticate({k.lower(): v for k, v in websocket.headers.items()}, "GET")
    sim.require(principal, f"/vms/{vmid}", "VM.Console")
    vm = sim.vm(node, vmid)
    ticket = websocket.query_params.get("vncticket", "")
    port = websocket.query_params.get("port", "")
    issued = sim.vnc_tickets.get(ticket)
    if issued is None or not port.isdigit():
        raise PveError(401, "permission denied - invalid vncticket")
    ticket_vmid, ticket_port, expires, user = issued
    if ticket_vmid != vmid or ticket_port != int(port) or user != principal.name or sim.now() > expires:
        raise PveError(401, "permission denied - invalid vncticket")
    if vm.status != "running":
        raise PveError(500, f"VM {vmid} not running")
    del sim.vnc_tickets[ticket]  # the vncproxy listener takes one connection
    return ticket


async def vncwebsocket(sim: ProxmoxState, scope: Scope, receive: Receive, send: Send) -> None:
    websocket = WebSocket(scope, receive, send)
    sim.requests.append(("WEBSOCKET", websocket.url.path.removeprefix("/api2/json"), {}))
    try:
        password = _check(sim, websocket)
    except PveError as exc:
        body: dict[str, Any] = {"data": None, "message": f"{exc.message}\n"}
        try:
            await websocket.send_denial_response(JSONResponse(body, status_code=exc.status))
        except RuntimeError:  # a server without the denial-response extension: a bare 403
            await websocket.close()
        return
    await serve_console(websocket, password=password, backend=sim.console_backend)
