"""Byte streams to upstream consoles: a websocket (through an upstream client) or plain TCP.

A console is not a request and a response but a long-lived duplex byte stream (RFB). Platforms
expose it in two ways: as a websocket on their API host (VirtFusion's ``/vnc/?token=``, Proxmox's
``vncwebsocket``), opened through :meth:`~vpsbridge.http.client.UpstreamClient.open_websocket` so that
TLS verification, authentication headers, redaction and the request record stay in the client's one
place; or as a bare VNC server on a host and port (:func:`open_tcp`).

Both are :class:`ByteStream`\\ s: ``read()`` returns the next chunk (``b""`` once the peer has gone),
``write()`` sends, ``aclose()`` is idempotent. :class:`BufferedChannel` adds exact reads for protocol
handshakes and hands back whatever it read ahead; :func:`splice` joins two streams until either ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

CHUNK = 65536


class StreamClosed(Exception):
    """The peer closed the stream before the bytes a handshake needed arrived."""


class ByteStream(Protocol):
    async def read(self) -> bytes:
        """The next chunk, or ``b""`` once the peer has closed."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def aclose(self) -> None: ...


class TcpStream:
    """A plain TCP connection (a VNC server listening on a host and port)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        try:
            return await self._reader.read(CHUNK)
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def aclose(self) -> None:
        if self._writer.is_closing():
            return
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


async def open_tcp(host: str, port: int, *, timeout: float = 10.0) -> TcpStream:
    """Connect to ``host``:``port``; ``OSError``/``TimeoutError`` when it does not answer."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    return TcpStream(reader, writer)


class WebSocketStream:
    """Binary frames of a client websocket as a byte stream (a text frame is passed on as UTF-8)."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    @property
    def subprotocol(self) -> str | None:
        return self._connection.subprotocol

    async def read(self) -> bytes:
        try:
            message = await self._connection.recv()
        except ConnectionClosed:
            return b""
        return message if isinstance(message, bytes) else message.encode()

    async def write(self, data: bytes) -> None:
        await self._connection.send(data)

    async def aclose(self) -> None:
        await self._connection.close()


class BufferedChannel:
    """Exact reads over a :class:`ByteStream`, for handshakes; :meth:`take_buffer` returns the rest."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    async def read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = await self.stream.read()
            if not chunk:
                raise StreamClosed(f"the peer closed after {len(self._buffer)} of {n} bytes")
            self._buffer += chunk
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    async def write(self, data: bytes) -> None:
        await self.stream.write(data)

    def take_buffer(self) -> bytes:
        """Bytes read ahead of the handshake; they belong to the data that follows it."""
        out = bytes(self._buffer)
        self._buffer.clear()
        return out


async def _pump(source: ByteStream, sink: ByteStream, first: bytes) -> None:
    if first:
        await sink.write(first)
    while chunk := await source.read():
        await sink.write(chunk)


async def splice(a: BufferedChannel, b: BufferedChannel) -> None:
    """Copy bytes both ways (starting with what each channel read ahead) until one side ends.

    Both streams are closed afterwards. A failing write (the other side vanished) ends the splice
    like a close does; it is not an error worth more than the end of the console session.
    """
    tasks = [
        asyncio.ensure_future(_pump(a.stream, b.stream, a.take_buffer())),
        asyncio.ensure_future(_pump(b.stream, a.stream, b.take_buffer())),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        for stream in (a.stream, b.stream):
            with contextlib.suppress(Exception):
                await stream.aclose()


class AsgiWebSocketStream:
    """The server side of a websocket (Starlette's ``WebSocket``, already accepted) as a byte stream.

    Used where vpsbridge *serves* a console websocket: the portal's relay towards the browser and
    the simulators' console endpoints.
    """

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._closed = False

    async def read(self) -> bytes:
        if self._closed:
            return b""
        try:
            message = await self._websocket.receive()
        except (RuntimeError, WebSocketDisconnect):
            message = {"type": "websocket.disconnect"}
        if message["type"] == "websocket.disconnect":
            self._closed = True
            return b""
        data = message.get("bytes")
        return data if data is not None else str(message.get("text") or "").encode()

    async def write(self, data: bytes) -> None:
        await self._websocket.send_bytes(data)

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self._websocket.close(code=code, reason=reason)


def offered_subprotocol(websocket: WebSocket, wanted: str = "binary") -> str | None:
    """``wanted`` when the client offered it (noVNC and Proxmox speak ``binary``), else ``None``."""
    header = websocket.headers.get("sec-websocket-protocol", "")
    return wanted if wanted in (p.strip() for p in header.split(",")) else None
