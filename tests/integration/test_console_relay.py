"""Consoles end to end over real sockets: a real VNC server (Xvnc), the simulators' console websockets,
the drivers' console streams, and the portal's relay - the RFB handshakes on every hop.

The drivers talk to simulators served by uvicorn on loopback (a websocket cannot go through an
in-process transport), the simulators bridge to Xvnc, and every test ends by reading the real
ServerInit (the display's size), so a test passes only when the whole chain carried real RFB.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

sys.path.insert(0, str(Path(__file__).resolve().parent))

import portal_support
from portal_support import ORIGIN, PortalWorld, app_client, sign_in
from provisioning_support import ACTOR
from virtfusion_support import make_sim, spec

from conftest import require_binary
from live_server import served
from vpsbridge.core import rfb
from vpsbridge.http import UpstreamAuthError, UpstreamRecord
from vpsbridge.http.streams import BufferedChannel, ByteStream, StreamClosed, WebSocketStream, open_tcp
from vpsbridge.platforms.dummy import DummyPlatform
from vpsbridge.platforms.models import ConsoleTicket, ServerRef
from vpsbridge.platforms.proxmox import ProxmoxPlatform
from vpsbridge.platforms.virtfusion import VirtFusionPlatform
from vpsbridge.services import platforms
from vpsbridge.sim.proxmox import ProxmoxState, create_app
from vpsbridge.sim.proxmox.cluster import standard_cluster
from vpsbridge.sim.vncdisplay import VncDisplay
from vpsbridge.web.app import create_app as create_web_app

WIDTH, HEIGHT = 640, 400
world = portal_support.world
pworld = portal_support.pworld


@pytest.fixture(scope="module")
def display() -> Iterator[VncDisplay]:
    require_binary("Xvnc")
    vnc = VncDisplay(banner="console relay test", width=WIDTH, height=HEIGHT)
    asyncio.run(vnc.start())
    yield vnc
    vnc.stop()


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """A simulator on a loopback port (no lifespan: simulators have none); yields its base URL."""
    async with served(app, lifespan="off") as port:
        yield f"http://127.0.0.1:{port}"


async def server_init(channel: BufferedChannel) -> tuple[int, int, str]:
    """Send ClientInit (shared) and read ServerInit: width, height and the desktop name."""
    await channel.write(b"\x01")
    head = await channel.read_exactly(24)
    width, height = struct.unpack(">HH", head[:4])
    (name_length,) = struct.unpack(">I", head[20:24])
    name = (await channel.read_exactly(name_length)).decode()
    return width, height, name


# --- the RFB handshake against a real server -----------------------------------------------------------


async def test_vnc_authentication_is_what_a_real_vnc_server_accepts() -> None:
    """Our DES answer is checked by TigerVNC itself (a password file made by its own vncpasswd)."""
    require_binary("Xvnc")
    require_binary("vncpasswd")
    vnc = await VncDisplay(password="Pa55-word", width=WIDTH, height=HEIGHT).start()
    try:
        good = BufferedChannel(await _tcp(vnc))
        await rfb.client_handshake(good, "Pa55-word")
        assert (await server_init(good))[:2] == (WIDTH, HEIGHT)
        await good.stream.aclose()

        bad = BufferedChannel(await _tcp(vnc))
        with pytest.raises(rfb.RfbError, match="refused the credentials"):
            await rfb.client_handshake(bad, "Pa55-wXrd")
        await bad.stream.aclose()
    finally:
        vnc.stop()


async def _tcp(vnc: VncDisplay) -> ByteStream:
    return await open_tcp(vnc.host, vnc.port)


# --- VirtFusion: the panel's /vnc/ websocket -----------------------------------------------------------


async def test_virtfusion_console_stream_carries_the_real_screen(display: VncDisplay) -> None:
    state, app = make_sim(task_seconds=0.01)
    state.console_backend = (display.host, display.port)
    records: list[UpstreamRecord] = []
    async with serving(app) as url:
        driver = VirtFusionPlatform(
            url=url,
            credentials={"token": "sim-token"},
            settings={"hypervisor_group_id": 1, "package_id": 1, "panel_url": url},
            recorder=records.append,
        )
        try:
            created = await driver.create_server(spec(os_template="1"))
            ref = created.server
            assert ref is not None
            ticket = await driver.console(ref)
            assert ticket.password
            assert ticket.ticket
            assert ticket.password not in repr(ticket)

            channel = BufferedChannel(await driver.console_stream(ticket))
            await rfb.client_handshake(channel, ticket.password)
            width, height, _ = await server_init(channel)
            assert (width, height) == (WIDTH, HEIGHT)
            await channel.stream.aclose()

            # The panel's token never appears in the request log, and the open is recorded.
            opened = [r for r in records if "/vnc/" in r.url]
            assert opened
            assert opened[0].status == 101
            assert all(ticket.ticket not in r.url for r in records)

            # A wrong VNC password is refused by the panel's RFB, with its reason.
            channel = BufferedChannel(await driver.console_stream(ticket))
            with pytest.raises(rfb.RfbError, match="refused the credentials"):
                await rfb.client_handshake(channel, "not-the-password")
            await channel.stream.aclose()

            # Each open rotates the token: the previous ticket's websocket is refused.
            fresh = await driver.console(ref)
            assert fresh.ticket != ticket.ticket
            with pytest.raises(UpstreamAuthError):
                await driver.console_stream(ticket)
            channel = BufferedChannel(await driver.console_stream(fresh))
            await rfb.client_handshake(channel, fresh.password)
            assert (await server_init(channel))[:2] == (WIDTH, HEIGHT)
            await channel.stream.aclose()
        finally:
            await driver.aclose()


async def test_virtfusion_console_without_a_backend_closes_with_a_reason() -> None:
    _state, app = make_sim(task_seconds=0.01)
    async with serving(app) as url:
        driver = VirtFusionPlatform(
            url=url, credentials={"token": "sim-token"}, settings={"hypervisor_group_id": 1, "panel_url": url}
        )
        try:
            created = await driver.create_server(spec(os_template="1"))
            assert created.server is not None
            ticket = await driver.console(created.server)
            channel = BufferedChannel(await driver.console_stream(ticket))
            with pytest.raises(StreamClosed):
                await rfb.client_handshake(channel, ticket.password)
            assert isinstance(channel.stream, WebSocketStream)
        finally:
            await driver.aclose()


# --- Proxmox: vncwebsocket bound to user, port and 40 seconds ---------------------------------------


async def _running_vm(driver: ProxmoxPlatform) -> ServerRef:
    vmid = await driver.next_vmid()
    task = await driver.clone(9000, vmid, name=f"vps{vmid}")
    await driver.wait(task)
    assert task.server is not None
    await driver.wait(await driver.power(task.server, "start"))
    return task.server


async def test_proxmox_vncwebsocket_relays_the_real_screen_once(display: VncDisplay) -> None:
    sim, info = standard_cluster(ProxmoxState(time_scale=0.0, seed=3))
    sim.console_backend = (display.host, display.port)
    async with serving(create_app(sim)) as url:
        settings = {"poll_interval": 0.01, "task_timeout": 5}
        api = {"token_id": info.token_id, "token_secret": info.token_secret}
        console_user = {"console_user": info.console_user, "console_password": info.console_password}
        driver = ProxmoxPlatform(url=url, credentials={**api, **console_user}, settings=settings)
        token_only = ProxmoxPlatform(url=url, credentials=api, settings=settings)
        try:
            ref = await _running_vm(driver)
            ticket = await driver.console(ref)
            assert ticket.password == ticket.ticket  # PVE: the vncticket is the VNC password

            channel = BufferedChannel(await driver.console_stream(ticket))
            await rfb.client_handshake(channel, ticket.password)
            assert (await server_init(channel))[:2] == (WIDTH, HEIGHT)
            await channel.stream.aclose()

            # The vncproxy listener took its one connection: the same ticket opens nothing more.
            with pytest.raises(UpstreamAuthError, match="invalid vncticket"):
                await driver.console_stream(ticket)

            # A ticket is bound to the user who asked for it (here the console user, not the token).
            other = await driver.console(ref)
            with pytest.raises(UpstreamAuthError, match="invalid vncticket"):
                await token_only.console_stream(other)

            # ... and lives 40 seconds.
            late = await driver.console(ref)
            sim.advance(41)
            with pytest.raises(UpstreamAuthError, match="invalid vncticket"):
                await driver.console_stream(late)
            assert any(r[0] == "WEBSOCKET" for r in sim.requests)
        finally:
            await driver.aclose()
            await token_only.aclose()


async def test_in_memory_platform_console_is_a_bare_vnc_server(display: VncDisplay) -> None:
    driver = DummyPlatform(
        url="dummy://console-test", credentials={}, settings={"console_vnc": f"127.0.0.1:{display.port}"}
    )
    ticket = ConsoleTicket.model_validate(
        {"kind": "vnc", "host": "127.0.0.1", "port": display.port, "expires_at": "2030-01-01T00:00:00Z"}
    )
    channel = BufferedChannel(await driver.console_stream(ticket))
    await rfb.client_handshake(channel, None)
    assert (await server_init(channel))[:2] == (WIDTH, HEIGHT)
    await channel.stream.aclose()
    await driver.aclose()


# --- the portal's relay: noVNC's side ------------------------------------------------------------------


async def test_portal_relay_offers_security_none_and_refuses_a_reused_ticket(
    pworld: PortalWorld, display: VncDisplay
) -> None:
    ctx = pworld.ctx
    for item in await platforms.list_platforms(ctx):
        if item.type == "dummy":
            settings = {**item.settings, "console_vnc": f"127.0.0.1:{display.port}"}
            await platforms.update_platform(ctx, item.name, {"settings": settings}, ACTOR)
    async with app_client(pworld) as client:
        csrf = await sign_in(client, pworld, pworld.mine)
        page = await client.post(
            f"/portal/s/{pworld.mine}/console", data={"csrf_token": csrf}, headers={"Origin": ORIGIN}
        )
        assert page.status_code == 200, page.text
        relay = page.text.split("/portal/console/ws?ticket=")[1].split('"')[0]
    assert page.headers["x-frame-options"] == "DENY"

    web = create_web_app(context=ctx, migrate=False)
    web.state.ctx = ctx
    async with serving(web) as url:
        ws_url = url.replace("http://", "ws://") + f"/portal/console/ws?ticket={relay}"
        host = url.removeprefix("http://")

        with pytest.raises(InvalidStatus) as refused:
            await ws_connect(ws_url, origin="https://elsewhere.example", subprotocols=["binary"])  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403

        async with ws_connect(ws_url, origin=f"http://{host}", subprotocols=["binary"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "binary"
            browser = BufferedChannel(WebSocketStream(ws))
            # What noVNC sees: security None only, no password asked, then the real screen.
            await rfb.client_handshake(browser, None)
            assert (await server_init(browser))[:2] == (WIDTH, HEIGHT)

        async with ws_connect(ws_url, origin=f"http://{host}", subprotocols=["binary"]) as ws:  # type: ignore[list-item]
            with pytest.raises(rfb.RfbError, match="expired or was already used"):
                await rfb.client_handshake(BufferedChannel(WebSocketStream(ws)), None)
