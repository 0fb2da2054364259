"""The RFB security handshake, both sides, over in-memory pipes: every protocol version, both security
types, refusals with their reasons. (The DES answer is also checked by a real TigerVNC server in
tests/integration/test_console_relay.py.)"""

from __future__ import annotations

import asyncio
import struct

import pytest

from vpsbridge.core import rfb


class Pipe:
    """One end of an in-memory duplex connection."""

    def __init__(self, inbox: asyncio.Queue[bytes], outbox: asyncio.Queue[bytes]) -> None:
        self.inbox, self.outbox = inbox, outbox
        self.buffer = b""
        self.sent: list[bytes] = []

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = await asyncio.wait_for(self.inbox.get(), 2)
            if not chunk:
                raise EOFError("closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    async def write(self, data: bytes) -> None:
        self.sent.append(data)
        await self.outbox.put(data)


def pipe() -> tuple[Pipe, Pipe]:
    a: asyncio.Queue[bytes] = asyncio.Queue()
    b: asyncio.Queue[bytes] = asyncio.Queue()
    return Pipe(a, b), Pipe(b, a)


@pytest.mark.parametrize("password", [None, "s3cret!!", "a-much-longer-password", "é"])
async def test_client_and_server_agree(password: str | None) -> None:
    client, server = pipe()
    await asyncio.gather(rfb.client_handshake(client, password), rfb.server_handshake(server, password))
    assert client.buffer == server.buffer == b""


async def test_wrong_password_fails_on_both_sides_with_a_reason() -> None:
    client, server = pipe()
    results = await asyncio.gather(
        rfb.client_handshake(client, "guess123"),
        rfb.server_handshake(server, "right-one"),
        return_exceptions=True,
    )
    assert isinstance(results[0], rfb.RfbError)
    assert "authentication failed" in str(results[0])
    assert isinstance(results[1], rfb.RfbError)


async def test_only_the_first_eight_characters_count_as_in_every_vnc_server() -> None:
    client, server = pipe()
    await asyncio.gather(
        rfb.client_handshake(client, "12345678-x"), rfb.server_handshake(server, "12345678-y")
    )


def test_des_answer_matches_the_published_des_example() -> None:
    """FIPS 81's example: key 0123456789ABCDEF encrypts "Now is t" to 3FA40E8A984D4815. VNC mirrors
    the bits of each password byte to make its key, so the password is that key with bits mirrored."""
    mirrored = bytes(int(f"{b:08b}"[::-1], 2) for b in bytes.fromhex("0123456789ABCDEF"))
    answer = rfb.vnc_auth_response(mirrored.decode("latin-1"), b"Now is tNow is t")
    assert answer == bytes.fromhex("3FA40E8A984D4815" * 2)


@pytest.mark.parametrize("version", [rfb.VERSION_3_3, rfb.VERSION_3_7, b"RFB 003.889\n"])
async def test_server_speaks_older_clients_versions(version: bytes) -> None:
    """A 3.3 client gets the type as a U32 and a 3.7 client no SecurityResult after None."""
    client, server = pipe()

    async def old_client() -> None:
        assert await client.read_exactly(12) == rfb.VERSION_3_8
        await client.write(version)
        if version == rfb.VERSION_3_3:
            assert struct.unpack(">I", await client.read_exactly(4)) == (rfb.SECURITY_NONE,)
        else:
            assert await client.read_exactly(2) == bytes([1, rfb.SECURITY_NONE])
            await client.write(bytes([rfb.SECURITY_NONE]))
            if version != rfb.VERSION_3_7:
                assert struct.unpack(">I", await client.read_exactly(4)) == (0,)

    await asyncio.gather(old_client(), rfb.server_handshake(server, None))
    assert client.buffer == b""


async def test_client_speaks_to_a_3_3_server_with_vnc_auth() -> None:
    client, server = pipe()

    async def old_server() -> None:
        await server.write(rfb.VERSION_3_3)
        assert await server.read_exactly(12) == rfb.VERSION_3_3
        await server.write(struct.pack(">I", rfb.SECURITY_VNC_AUTH))
        challenge = b"0123456789abcdef"
        await server.write(challenge)
        assert await server.read_exactly(16) == rfb.vnc_auth_response("pw", challenge)
        await server.write(struct.pack(">I", 0))

    await asyncio.gather(old_server(), rfb.client_handshake(client, "pw"))


async def test_refusal_reason_reaches_the_client() -> None:
    client, server = pipe()
    results = await asyncio.gather(
        rfb.client_handshake(client, None), rfb.server_refuse(server, "link expired"), return_exceptions=True
    )
    assert isinstance(results[0], rfb.RfbError)
    assert "link expired" in str(results[0])
    assert results[1] is None


async def test_client_without_password_refuses_a_server_that_wants_one() -> None:
    client, server = pipe()
    results = await asyncio.gather(
        rfb.client_handshake(client, None), rfb.server_handshake(server, "pw"), return_exceptions=True
    )
    assert isinstance(results[0], rfb.RfbError)
    assert "password" in str(results[0])


async def test_client_refuses_a_server_with_unsupported_security_only() -> None:
    client, server = pipe()

    async def tight_server() -> None:
        await server.write(rfb.VERSION_3_8)
        await server.read_exactly(12)
        await server.write(bytes([2, 16, 19]))  # Tight, VeNCrypt

    results = await asyncio.gather(rfb.client_handshake(client, "pw"), tight_server(), return_exceptions=True)
    assert isinstance(results[0], rfb.RfbError)
    assert "no supported security type" in str(results[0])


@pytest.mark.parametrize("banner", [b"HTTP/1.1 200", b"RFB 004.000\n", b"RFB 003.0x8\n"])
async def test_not_rfb_is_refused(banner: bytes) -> None:
    client, server = pipe()
    await server.write(banner)
    with pytest.raises(rfb.RfbError):
        await rfb.client_handshake(client, None)
