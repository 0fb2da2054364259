"""Shared pieces of the PHP bridge end-to-end tests: MariaDB database, running stack, PHP harness."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from conftest import REPO, require, require_binary

MODULE_DIR = REPO / "integrations" / "whmcs" / "modules" / "servers" / "vpsbridge"
HARNESS = Path(__file__).parent / "php" / "harness.php"
STACK = Path(__file__).parent / "stack.py"
ILLUMINATE = Path("/usr/share/php/Illuminate/Database/autoload.php")
SIM_TOKEN = "e2e-virtfusion-token"


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def mariadb_database() -> Iterator[str]:
    """A throw-away MariaDB database (dropped afterwards)."""
    mysql = require_binary("mysql")
    require(port_open("127.0.0.1", 3306), "MariaDB is not running on 127.0.0.1:3306")
    require(
        ILLUMINATE.exists(),
        "php-illuminate-database is not installed (apt-get install it)",
    )
    name = f"whmcs_e2e_{uuid.uuid4().hex[:10]}"
    base = [mysql, "-h127.0.0.1", "-P3306", "-uroot"]
    subprocess.run([*base, "-e", f"CREATE DATABASE `{name}`"], check=True)
    try:
        yield name
    finally:
        subprocess.run([*base, "-e", f"DROP DATABASE IF EXISTS `{name}`"], check=False)


@dataclass
class Stack:
    bridge: str
    sim: str
    secret: str
    process: subprocess.Popen[str]
    log: Path | None = None
    #: A read-scoped operator API token of the running stack.
    api_token: str = ""

    def sim_state(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx2.get(f"{self.sim}/_sim/state", timeout=5).json()
        return data

    def sim_get(self, path: str) -> Any:
        response = httpx2.get(
            f"{self.sim}/api/v1{path}", headers={"Authorization": f"Bearer {SIM_TOKEN}"}, timeout=5
        )
        response.raise_for_status()
        return response.json()


def start_stack(tmp: Path) -> Iterator[Stack]:
    """Start ``stack.py``; its output goes to a file (a pipe nobody reads would block it)."""
    secret = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log_path = tmp / "stack.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, str(STACK), str(tmp), secret],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            for line in log_path.read_text().splitlines():
                if line.startswith("READY "):
                    urls = json.loads(line[6:])
                    yield Stack(
                        bridge=urls["bridge"],
                        sim=urls["sim"],
                        secret=secret,
                        process=process,
                        api_token=urls.get("api_token", ""),
                    )
                    return
            time.sleep(0.1)
        raise RuntimeError("the vpsbridge stack did not start:\n" + log_path.read_text()[-4000:])
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


class Whmcs:
    """Drives the PHP harness: the module, its hooks and the WHMCS tables in MariaDB."""

    def __init__(self, database: str) -> None:
        self.php = require_binary("php")
        self.env = {**os.environ, "HARNESS_DB": database, "HARNESS_MODULE_DIR": str(MODULE_DIR)}

    def run(self, command: dict[str, Any], *, timeout: float = 90) -> dict[str, Any]:
        done = subprocess.run(
            [self.php, str(HARNESS)],
            input=json.dumps(command),
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        answer: dict[str, Any] = json.loads(done.stdout)
        assert "exception" not in answer, answer["exception"]
        assert "Stack trace" not in answer.get("output", "")
        return answer

    def sql(self, sql: str, *bindings: Any) -> Any:
        return self.run({"cmd": "sql", "sql": sql, "bindings": list(bindings)})["result"]

    def module(self, function: str, params: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        return self.run({"cmd": "module", "function": function, "params": params or {}, **extra})

    def hook(self, hook: str, vars_: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        return self.run({"cmd": "hook", "hook": hook, "vars": vars_ or {}, **extra})

    def insert(self, table: str, **values: Any) -> int:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.sql(f"INSERT INTO {table} ({columns}) VALUES ({marks})", *values.values())
        return int(self.sql(f"SELECT MAX(id) AS id FROM {table}")[0]["id"])
