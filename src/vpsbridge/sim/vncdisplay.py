"""A real VNC server for the simulators' consoles: a headless ``Xvnc`` on loopback with something drawn on it.

The simulated panels cannot boot a guest, but their console websockets should still carry a real
RFB stream, so that the console relay, noVNC and the browser tests are exercised end to end. This
module starts TigerVNC's ``Xvnc`` (Debian package ``tigervnc-standalone-server``), which needs no
other X server, on a free display and a free loopback port. An empty X screen is black, and a black
canvas cannot be told apart from a console that never drew, so the display gets a coloured
background (``xsetroot``, package ``x11-xserver-utils``) and a banner window (``xmessage``, package
``x11-utils``) when those tools are installed.

The server is started with ``-SecurityTypes None`` unless a password is given (then ``VncAuth``
with a password file written by ``vncpasswd``, package ``tigervnc-tools``): the simulators perform
the platform's own console authentication themselves and bridge to this server afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: The banner's background: the product's blue, so a screenshot shows at a glance that it drew.
BACKGROUND = "#1f4e8c"
_XVNC_NAMES = ("Xvnc", "Xtigervnc")


class VncDisplayError(RuntimeError):
    """Xvnc is missing or did not come up."""


def xvnc_binary() -> str | None:
    """The path of Xvnc, or ``None`` when TigerVNC's standalone server is not installed."""
    for name in _XVNC_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _free_display(start: int = 40) -> int:
    """A display number with neither a lock file nor a socket (Xvnc refuses a display in use)."""
    for number in range(start, start + 200):
        # Fixed paths by X11 convention, only checked for existence.
        lock, sock = Path(f"/tmp/.X{number}-lock"), Path(f"/tmp/.X11-unix/X{number}")  # noqa: S108
        if not lock.exists() and not sock.exists():
            return number
    raise VncDisplayError("no free X display number between 40 and 240")


def _spawn(
    argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child quietly. Synchronous on purpose: ``stop()`` must work without an event loop."""
    return subprocess.Popen(  # noqa: S603 - argv is built here from resolved binaries
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@dataclass
class VncDisplay:
    """One running Xvnc; ``await start()``, then connect to ``host``:``port``; ``stop()`` when done."""

    banner: str = "vpsbridge console"
    width: int = 800
    height: int = 500
    password: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    display: int = 0
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return bool(self._procs) and self._procs[0].poll() is None

    async def start(self, *, timeout: float = 15.0) -> VncDisplay:
        binary = xvnc_binary()
        if binary is None:
            raise VncDisplayError(
                "Xvnc is not installed (Debian: apt-get install tigervnc-standalone-server)"
            )
        self._workdir = tempfile.TemporaryDirectory(prefix="vpsbridge-vnc-")
        security = ["-SecurityTypes", "None"]
        if self.password is not None:
            security = ["-SecurityTypes", "VncAuth", "-PasswordFile", str(self._password_file())]
        last_error = "Xvnc did not answer"
        for _ in range(3):  # a display or port taken between the check and the bind: try another
            self.port, self.display = _free_port(), _free_display()
            xvnc = _spawn(
                [
                    binary,
                    f":{self.display}",
                    "-rfbport",
                    str(self.port),
                    "-localhost",
                    "-geometry",
                    f"{self.width}x{self.height}",
                    "-depth",
                    "24",
                    "-AlwaysShared",
                    *security,
                ],
                cwd=self._workdir.name,
            )
            self._procs = [xvnc]
            if await self._answers(timeout):
                await self._draw()
                return self
            last_error = f"Xvnc on :{self.display} (port {self.port}) did not answer within {timeout:.0f} s"
            self.stop()
        raise VncDisplayError(last_error)

    def _password_file(self) -> Path:
        assert self._workdir is not None
        assert self.password is not None
        tool = shutil.which("vncpasswd") or shutil.which("tigervncpasswd")
        if tool is None:
            raise VncDisplayError("vncpasswd is not installed (Debian: apt-get install tigervnc-tools)")
        out = subprocess.run(  # noqa: S603 - a resolved binary and a fixed flag
            [tool, "-f"], input=self.password.encode(), capture_output=True, check=True
        )
        path = Path(self._workdir.name) / "passwd"
        path.write_bytes(out.stdout)
        path.chmod(0o600)
        return path

    async def _answers(self, timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if self._procs[0].poll() is not None:
                return False
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            try:
                banner = await asyncio.wait_for(reader.readexactly(12), 2)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                banner = b""
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            if banner.startswith(b"RFB "):
                return True
            await asyncio.sleep(0.1)
        return False

    async def _draw(self) -> None:
        """Paint the background and open the banner window, when the X tools are installed."""
        env = {**os.environ, "DISPLAY": f":{self.display}"}
        xsetroot = shutil.which("xsetroot")
        if xsetroot:
            done = await asyncio.create_subprocess_exec(
                xsetroot, "-solid", BACKGROUND, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            await done.wait()
        xmessage = shutil.which("xmessage")
        if xmessage:
            self._procs.append(_spawn([xmessage, "-center", "-buttons", "", self.banner], env=env))

    def stop(self) -> None:
        """Stop the banner and the server (by the PIDs this object started), then remove its files."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._procs = []
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
