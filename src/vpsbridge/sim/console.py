"""The simulators' console websockets: the platform's own RFB authentication, then a real VNC server.

A real platform's console websocket carries the guest's VNC stream and asks for the platform's VNC
password inside RFB (VirtFusion's ``vnc.password``; on Proxmox the vncticket doubles as the password).
The simulators do the same with :func:`serve_console`: accept the websocket, demand the password
(:func:`vpsbridge.core.rfb.server_handshake`), then connect to ``console_backend`` - a real VNC server
such as the one :mod:`vpsbridge.sim.vncdisplay` starts - with security None, and copy bytes both
ways. Whoever connects therefore has to get the platform's authentication right, and what they see
afterwards is a real screen.
"""

from __future__ import annotations

from starlette.websockets import WebSocket

from vpsbridge.core import rfb
from vpsbridge.http.streams import (
    AsgiWebSocketStream,
    BufferedChannel,
    StreamClosed,
    offered_subprotocol,
    open_tcp,
    splice,
)

#: Close codes: 1008 policy (authentication failed), 1011 server error (no backend).
POLICY, UNAVAILABLE = 1008, 1011


async def serve_console(websocket: WebSocket, *, password: str, backend: tuple[str, int] | None) -> None:
    """Accept ``websocket`` and bridge it, after VNC authentication with ``password``, to ``backend``."""
    await websocket.accept(subprotocol=offered_subprotocol(websocket))
    client_side = AsgiWebSocketStream(websocket)
    if backend is None:
        await client_side.aclose(UNAVAILABLE, "no console backend is configured")
        return
    try:
        vnc = BufferedChannel(await open_tcp(*backend, timeout=5))
        await rfb.client_handshake(vnc, None)
    except (OSError, TimeoutError, rfb.RfbError, StreamClosed):
        await client_side.aclose(UNAVAILABLE, "the console backend is not reachable")
        return
    client = BufferedChannel(client_side)
    try:
        await rfb.server_handshake(client, password)
    except (rfb.RfbError, StreamClosed):
        await client_side.aclose(POLICY, "VNC authentication failed")
        await vnc.stream.aclose()
        return
    await splice(client, vnc)
