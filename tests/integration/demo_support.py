"""A ``vpsbridge demo`` subprocess as a person runs it, and helpers that read what it prints.

Shared by the demo's end-to-end test and the browser test that walks the sample client's journey.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from vpsbridge.services.demo_sample import SAMPLE_CLIENT_ID

SCRIPT = Path(sys.executable).with_name("vpsbridge")


class DemoProcess:
    """A ``vpsbridge demo`` subprocess whose stdout is collected by a thread."""

    def __init__(self, tmp_path: Path, data_dir: Path, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VPSBRIDGE_")}
        env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
        self.stderr_path = tmp_path / f"demo-stderr-{time.monotonic_ns()}.log"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [str(SCRIPT), "demo", "--port", "0", "--data-dir", str(data_dir), *extra],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Ctrl-C stops." in line:
                self.ready.set()
        self.ready.set()

    def banner(self, timeout: float = 90) -> str:
        if not self.ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            pytest.fail(f"demo did not start:\n{''.join(self.lines)}\n{self.stderr_path.read_text()}")
        return "".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._stderr.close()
        return code


def banner_field(banner: str, label: str) -> str:
    match = re.search(rf"{re.escape(label)}\s+(\S+(?: / \S+)?)", banner)
    assert match, f"{label!r} not in demo output:\n{banner}"
    return match.group(1)


def api_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def browse(url: str) -> tuple[str, str]:
    """GET ``url`` following redirects with cookies kept, as a browser would; (final URL, body)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(url, timeout=10) as response:
        return response.geturl(), response.read().decode()


def wait_samples_active(api: str, token: str, timeout: float = 90) -> dict[str, int]:
    """Wait until the sample client's two services are active; their ids by billing service id."""
    deadline = time.monotonic() + timeout
    services: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        status, body = api_get(f"{api}/services?client_id={SAMPLE_CLIENT_ID}", token)
        assert status == 200, body
        services = json.loads(body)
        if len(services) == 2 and all(s["status"] == "active" for s in services):
            return {s["billing_service_id"]: s["id"] for s in services}
        time.sleep(0.5)
    pytest.fail(f"the sample services did not become active: {services}")
