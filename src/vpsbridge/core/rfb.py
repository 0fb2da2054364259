"""The RFB (VNC) security handshake, both sides, for the console relay and the simulated consoles.

A console relay that forwarded the upstream handshake untouched would have to give the browser the
upstream's VNC password (VirtFusion's ``vnc.password``, Proxmox's vncticket). Instead the relay
*terminates* the handshake on each side (RFC 6143 section 7.1-7.2):

* towards the platform it is the client (:func:`client_handshake`) and answers the VNC
  authentication challenge with the password that never leaves the server;
* towards the browser it is the server (:func:`server_handshake`) offering security type None,
  because the browser already proved who it is with a single-use relay ticket.

After both handshakes the rest of the protocol (ClientInit, ServerInit, framebuffer updates, input)
passes through byte for byte. The simulators use the same two functions the other way round: they
demand the platform's password from whoever opens their console websocket, then connect to a real
VNC server with security None.

No I/O happens here: the handshakes run over a :class:`Channel` the caller supplies (a websocket, a
TCP stream, an in-memory pipe in tests), so this module stays testable without sockets.
"""

from __future__ import annotations

import hmac
import os
import struct
from typing import Protocol

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

VERSION_3_3 = b"RFB 003.003\n"
VERSION_3_7 = b"RFB 003.007\n"
VERSION_3_8 = b"RFB 003.008\n"
SECURITY_NONE = 1
SECURITY_VNC_AUTH = 2
_RESULT_OK = 0
_RESULT_FAILED = 1
#: A peer announcing more than this is not speaking RFB (the field is one byte; real servers send few).
_MAX_REASON = 4096


class RfbError(Exception):
    """The handshake failed; the message is safe to show (it never contains a password)."""


class Channel(Protocol):
    """Exact reads and writes on one side of a console connection."""

    async def read_exactly(self, n: int) -> bytes:
        """``n`` bytes; raises (the channel's own exception) when the peer closed first."""
        ...

    async def write(self, data: bytes) -> None: ...


def _minor(version: bytes) -> int:
    """The protocol minor version of a ``ProtocolVersion`` message (3.3, 3.7, 3.8; others as 3.3)."""
    if len(version) != 12 or not version.startswith(b"RFB ") or version[11:] != b"\n":
        raise RfbError("the peer did not answer with an RFB protocol version")
    try:
        major, minor = int(version[4:7]), int(version[8:11])
    except ValueError as exc:
        raise RfbError("the peer sent a malformed RFB protocol version") from exc
    if major != 3:
        raise RfbError(f"unsupported RFB protocol version {major}.{minor}")
    # RFC 6143 7.1.1: 3.4/3.6 (UltraVNC, ...) are treated as 3.3; 3.5 was never published.
    return 8 if minor >= 8 else 7 if minor == 7 else 3


def _des_key(password: str) -> bytes:
    """VNC's key: the password's first 8 bytes, zero padded, each byte's bits mirrored."""
    raw = password.encode("latin-1", "replace")[:8].ljust(8, b"\0")
    return bytes(int(f"{byte:08b}"[::-1], 2) for byte in raw)


def vnc_auth_response(password: str, challenge: bytes) -> bytes:
    """The answer to a 16-byte VNC authentication challenge: DES-ECB of it under the password key."""
    if len(challenge) != 16:
        raise RfbError("the VNC authentication challenge must be 16 bytes")
    # VNC authentication is defined with single DES; TripleDES (EDE) with three equal keys is exactly that.
    encryptor = Cipher(TripleDES(_des_key(password) * 3), modes.ECB()).encryptor()  # noqa: S305 - RFB's DES
    return encryptor.update(challenge) + encryptor.finalize()


async def _read_reason(channel: Channel) -> str:
    (length,) = struct.unpack(">I", await channel.read_exactly(4))
    if length > _MAX_REASON:
        raise RfbError("the server sent an oversized failure reason")
    return (await channel.read_exactly(length)).decode("utf-8", "replace")


async def client_handshake(channel: Channel, password: str | None) -> None:
    """Be the client up to (not including) ClientInit: version, security type, authentication.

    Chooses None when the server offers it, otherwise VNC authentication with ``password``. Raises
    :class:`RfbError` with the server's reason when it refuses.
    """
    minor = _minor(await channel.read_exactly(12))
    await channel.write({3: VERSION_3_3, 7: VERSION_3_7, 8: VERSION_3_8}[minor])
    if minor == 3:
        (chosen,) = struct.unpack(">I", await channel.read_exactly(4))
        if chosen == 0:
            raise RfbError(f"the console refused the connection: {await _read_reason(channel)}")
    else:
        count = (await channel.read_exactly(1))[0]
        if count == 0:
            raise RfbError(f"the console refused the connection: {await _read_reason(channel)}")
        offered = set(await channel.read_exactly(count))
        if SECURITY_NONE in offered:
            chosen = SECURITY_NONE
        elif SECURITY_VNC_AUTH in offered:
            chosen = SECURITY_VNC_AUTH
        else:
            raise RfbError(f"the console offers no supported security type (offered {sorted(offered)})")
        await channel.write(bytes([chosen]))
    if chosen == SECURITY_VNC_AUTH:
        if password is None:
            raise RfbError("the console asks for a password and none is known")
        challenge = await channel.read_exactly(16)
        await channel.write(vnc_auth_response(password, challenge))
    elif chosen != SECURITY_NONE:
        raise RfbError(f"the console chose unsupported security type {chosen}")
    if chosen == SECURITY_NONE and minor < 8:
        return  # before 3.8 there is no SecurityResult after None
    (result,) = struct.unpack(">I", await channel.read_exactly(4))
    if result != _RESULT_OK:
        reason = await _read_reason(channel) if minor == 8 else "authentication failed"
        raise RfbError(f"the console refused the credentials: {reason}")


async def server_handshake(channel: Channel, password: str | None) -> None:
    """Be the server up to (not including) ClientInit, demanding ``password`` unless it is ``None``.

    Offers exactly one security type: None without a password, VNC authentication with one. A wrong
    answer gets a SecurityResult "failed" with a reason (3.8) and :class:`RfbError`.
    """
    await channel.write(VERSION_3_8)
    minor = _minor(await channel.read_exactly(12))
    wanted = SECURITY_NONE if password is None else SECURITY_VNC_AUTH
    if minor == 3:
        await channel.write(struct.pack(">I", wanted))
    else:
        await channel.write(bytes([1, wanted]))
        chosen = (await channel.read_exactly(1))[0]
        if chosen != wanted:
            await _refuse(channel, minor, "security type not offered")
            raise RfbError(f"the client chose security type {chosen}, which was not offered")
    if password is not None:
        challenge = os.urandom(16)
        await channel.write(challenge)
        answer = await channel.read_exactly(16)
        if not hmac.compare_digest(answer, vnc_auth_response(password, challenge)):
            await _refuse(channel, minor, "authentication failed")
            raise RfbError("the client failed VNC authentication")
    if password is not None or minor == 8:
        await channel.write(struct.pack(">I", _RESULT_OK))


async def _refuse(channel: Channel, minor: int, reason: str) -> None:
    await channel.write(struct.pack(">I", _RESULT_FAILED))
    if minor == 8:
        data = reason.encode()
        await channel.write(struct.pack(">I", len(data)) + data)


async def server_refuse(channel: Channel, reason: str) -> None:
    """Be a server that refuses the connection with ``reason`` (RFC 6143 7.1.2: zero security types).

    This is how an RFB client learns *why* (noVNC reports it as a security failure with the text),
    which a websocket close reason cannot do through noVNC.
    """
    await channel.write(VERSION_3_8)
    minor = _minor(await channel.read_exactly(12))
    data = reason.encode()
    await channel.write((struct.pack(">I", 0) if minor == 3 else b"\0") + struct.pack(">I", len(data)) + data)
