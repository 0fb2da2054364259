"""A throw-away PowerDNS Authoritative server for tests and benchmarks.

It runs Debian's ``pdns_server`` with the gsqlite3 backend on free loopback ports, with its own config
dir (``--config-dir`` so the system ``/etc/powerdns`` with its bind backend is never read), a fresh
SQLite database, ``primary=yes`` (without it NOTIFY is never sent) and ``also-notify`` pointed at a UDP
listener we run, so that tests can observe NOTIFY packets for real.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.opcode

SCHEMA_CANDIDATES = (
    Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"),
    Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"),
)
API_KEY = "test-api-key-0123456789"


def find_schema() -> Path | None:
    for candidate in SCHEMA_CANDIDATES:
        if candidate.exists():
            return candidate
    return None


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (DNS listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free loopback port")


@dataclass
class NotifySeen:
    zone: str
    at: float


@dataclass
class NotifyListener:
    """Answers NOTIFY on a UDP port and records which zones were notified."""

    port: int = 0
    seen: list[NotifySeen] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", self.port))
        sock.settimeout(0.1)
        self.port = int(sock.getsockname()[1])
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="notify-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                message = dns.message.from_wire(data)
            except Exception:
                continue
            if message.opcode() != dns.opcode.NOTIFY or not message.question:
                continue
            reply = dns.message.make_response(message)
            with contextlib.suppress(OSError):
                self._sock.sendto(reply.to_wire(), peer)
            with self._cond:
                self.seen.append(NotifySeen(message.question[0].name.to_text().lower(), time.monotonic()))
                self._cond.notify_all()

    def zones(self) -> list[str]:
        with self._cond:
            return [n.zone for n in self.seen]

    def clear(self) -> None:
        with self._cond:
            self.seen.clear()

    def wait_for(self, zone: str, timeout: float = 10.0) -> bool:
        """True once a NOTIFY for ``zone`` has arrived (pdns sends them from a background thread)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while zone.lower() not in (n.zone for n in self.seen):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()


@dataclass
class PdnsServer:
    """A running pdns_server; ``api_url`` is the webserver base (``http://127.0.0.1:PORT``)."""

    directory: Path
    dns_port: int
    api_port: int
    api_key: str
    process: subprocess.Popen[bytes]
    notify: NotifyListener

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "pdns.log"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _config(directory: Path, dns_port: int, api_port: int, notify_port: int, api_key: str) -> str:
    return "\n".join(
        [
            "launch=gsqlite3",
            f"gsqlite3-database={directory / 'pdns.sqlite3'}",
            "gsqlite3-dnssec=no",
            "local-address=127.0.0.1",
            f"local-port={dns_port}",
            "api=yes",
            f"api-key={api_key}",
            "webserver=yes",
            "webserver-address=127.0.0.1",
            f"webserver-port={api_port}",
            "webserver-allow-from=127.0.0.0/8",
            f"socket-dir={directory}",
            "security-poll-suffix=",
            "loglevel=4",
            "guardian=no",
            "daemon=no",
            "disable-syslog=yes",
            "primary=yes",
            f"also-notify=127.0.0.1:{notify_port}",
            # Notifications go to 127.0.0.1, which pdns would otherwise refuse as a local address.
            "only-notify=",
            "receiver-threads=1",
            "distributor-threads=1",
            "",
        ]
    )


def _wait_ready(server: PdnsServer, timeout: float) -> None:
    import httpx2

    deadline = time.monotonic() + timeout
    url = f"{server.api_url}/api/v1/servers/localhost"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"pdns_server exited early:\n{server.log_tail()}")
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(url, headers={"X-API-Key": server.api_key}, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"pdns_server did not become ready:\n{server.log_tail()}")


def start_pdns(binary: str, schema: Path, *, timeout: float = 15.0) -> PdnsServer:
    directory = Path(tempfile.mkdtemp(prefix="vpsbridge-pdns-"))
    with sqlite3.connect(directory / "pdns.sqlite3") as conn:
        conn.executescript(schema.read_text())
    conn.close()
    notify = NotifyListener()
    notify.start()
    dns_port, api_port = free_port(socket.SOCK_DGRAM), free_port()
    (directory / "pdns.conf").write_text(_config(directory, dns_port, api_port, notify.port, API_KEY))
    log = (directory / "pdns.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config-dir={directory}"], stdout=log, stderr=subprocess.STDOUT, cwd=directory
    )
    log.close()
    server = PdnsServer(directory, dns_port, api_port, API_KEY, process, notify)
    try:
        _wait_ready(server, timeout)
    except BaseException:
        stop_pdns(server)
        raise
    return server


def stop_pdns(server: PdnsServer) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)
    server.notify.stop()
    if not os.environ.get("VPSBRIDGE_KEEP_PDNS"):
        shutil.rmtree(server.directory, ignore_errors=True)


@contextlib.contextmanager
def running_pdns(binary: str, schema: Path) -> Iterator[PdnsServer]:
    server = start_pdns(binary, schema)
    try:
        yield server
    finally:
        stop_pdns(server)
