"""Proxmox deploys under injected faults, and a worker killed mid-deploy.

* Many parallel deploys while the simulated cluster answers random 500s, 596s and timeouts: every
  one ends ``active`` (VM running) or ``failed`` with a readable error; no address and no VMID is
  ever given twice. ``VPSBRIDGE_FAULT_DEPLOYS`` sets how many (100 for the full run; CI uses less).
* A worker process SIGKILLed while deploys are mid-clone: another worker resumes them after the
  lease expires and every deploy still ends with exactly one VM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.fernet import Fernet
from proxmox_flow_support import ACTOR, build_world
from sqlalchemy import select

from vpsbridge.config import load_settings
from vpsbridge.services import platforms, pools, products
from vpsbridge.services.context import AppContext
from vpsbridge.services.provisioning.proxmox import create_proxmox_service
from vpsbridge.sim.proxmox import ProxmoxState, create_app
from vpsbridge.sim.proxmox.cluster import standard_cluster
from vpsbridge.store.models import Job, Server, Service, VmidReservation

DEPLOYS = int(os.environ.get("VPSBRIDGE_FAULT_DEPLOYS", "20"))
RUNNER = Path(__file__).resolve().parent / "jobs_support" / "run_worker.py"


async def test_parallel_deploys_under_random_faults(db_url: str, tmp_path: Path) -> None:
    pool = {"name": "big", "network": "10.20.0.0/16", "gateway": "10.20.0.1"}
    w = await build_world(db_url, tmp_path, pool_specs=[pool], read_timeout=0.3)
    try:
        w.sim.random.seed(5)
        for status in (500, 596):
            w.sim.add_fault(r"^/nodes/", status=status, times=10**6, probability=0.03)
        w.sim.add_fault(r"^/(nodes|cluster)/", kind="timeout", times=10**6, probability=0.01)
        outs = await asyncio.gather(
            *(
                create_proxmox_service(
                    w.app, {"billing_service_id": f"f{i}", "client_id": "c", "product": w.product_id}, ACTOR
                )
                for i in range(DEPLOYS)
            )
        )
        await w.run(timeout=600, concurrency=16)
        statuses = Counter()
        for out in outs:
            service = await w.service(out.id)
            statuses[service.status] += 1
            assert service.status in ("active", "failed"), service.status
            if service.status == "failed":
                assert service.last_error
                assert len(service.last_error) > 10
            else:
                server = await w.server(service.server_id or 0)
                assert w.sim.vms[int(server.external_id or 0)].status == "running"
        addresses = [a.address for a in await w.addresses()]
        assert len(addresses) == len(set(addresses)) == DEPLOYS
        async with w.app.db.session() as session:
            ids = [s for s in (await session.execute(select(Server.external_id))).scalars() if s]
            reserved = list((await session.execute(select(VmidReservation.vmid))).scalars())
        assert len(ids) == len(set(ids))
        assert len(reserved) == len(set(reserved))
        ours = [vm for vm in w.sim.vms.values() if "vpsbridge-owner" in vm.config.get("description", "")]
        assert len(ours) == len({vm.vmid for vm in ours}) >= statuses["active"]
        assert statuses["active"] >= DEPLOYS * 0.8, statuses
    finally:
        await w.app.close()


# --- a worker killed mid-deploy ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SimServer:
    """The simulator on a real loopback port, so worker processes reach the same cluster."""

    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _worker(options: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(RUNNER), json.dumps(options)], env=dict(os.environ))


async def _jobs(app: AppContext) -> list[Job]:
    async with app.db.session() as session:
        return list((await session.execute(select(Job).where(Job.kind == "proxmox.deploy"))).scalars())


async def test_worker_killed_mid_deploy_is_resumed(db_url: str, tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = load_settings(database_url=db_url, data_dir=tmp_path, encryption_keys=[key], time_scale=0.01)
    app = await AppContext.create(settings)
    sim, info = standard_cluster(ProxmoxState(time_scale=1.0, seed=3))
    sim.durations.update({k: 0.0 for k in sim.durations})
    sim.durations["qmclone"] = 1.5  # long enough to kill the worker while clones run
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with SimServer(create_app(sim)) as url:
            platform = await platforms.create_platform(
                app,
                {
                    "name": "pve",
                    "type": "proxmox",
                    "url": url,
                    "credentials": {"token_id": info.token_id, "token_secret": info.token_secret},
                    "settings": {
                        "poll_interval": 0.02,
                        "retry_wait": 0.01,
                        "task_timeout": 10,
                        "storage": "local-lvm",
                    },
                },
                ACTOR,
            )
            product = await products.create_product(
                app,
                {
                    "name": "p",
                    "platform": platform.id,
                    "plan": {"cpu_cores": 1, "memory_mb": 1024, "disk_gb": 10, "template": 9000},
                },
                ACTOR,
            )
            await pools.create_pool(
                app, {"name": "v4", "platform": platform.id, "network": "192.0.2.0/24"}, ACTOR
            )
            outs = [
                await create_proxmox_service(
                    app, {"billing_service_id": f"k{i}", "client_id": "c", "product": product.id}, ACTOR
                )
                for i in range(3)
            ]
            options = {
                "database_url": db_url,
                "data_dir": str(tmp_path),
                "key": key,
                "time_scale": 0.01,
                "lease": 100,
                "heartbeat": 25,
                "poll": 0.05,
                "backoff": 2,
                "concurrency": 4,
                "mode": "forever",
            }
            first = _worker(options)
            procs.append(first)
            for _ in range(600):
                cloning = [j for j in await _jobs(app) if j.status == "running" and j.step_index == 2]
                if len(cloning) == 3 and any(vm.config.get("lock") == "clone" for vm in sim.vms.values()):
                    break
                await asyncio.sleep(0.02)
            else:
                pytest.fail("the deploys never reached the clone step")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            second = _worker({**options, "mode": "idle", "timeout": 120})
            procs.append(second)
            while second.poll() is None:
                await asyncio.sleep(0.1)
            assert second.returncode == 0
            async with app.db.session() as session:
                services = [await session.get(Service, o.id) for o in outs]
            assert all(s is not None and s.status == "active" for s in services), [
                (s.status, s.last_error) for s in services if s
            ]
            ours = [vm for vm in sim.vms.values() if not vm.template]
            assert len(ours) == 3
            assert all(vm.status == "running" for vm in ours)
            logs = " ".join(str(j.last_error or "") for j in await _jobs(app))
            assert all(j.status == "succeeded" for j in await _jobs(app)), logs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        await app.close()
