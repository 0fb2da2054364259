"""Proxmox deploys through the job engine: 1 worker process against 4, against the simulated cluster.

    python benchmarks/deploy.py              # 200 deploys per run (throw-away database on 127.0.0.1:5432)
    python benchmarks/deploy.py --smoke      # 12 deploys, for CI
    python benchmarks/deploy.py --deploys 50 --scale 0.02 --database-url postgresql://...

The simulator is served on a loopback port (so worker processes share one cluster) with Proxmox's
task durations (clone 3 s, migrate 3 s, start 1 s ...) multiplied by ``--scale``; the engine's own
waits are scaled the same way. For each worker count the script queues ``--deploys`` deploys at
once, runs the workers until every job has finished, and reports:

* wall time, and the *critical path* of one deploy - the same deploy run alone - so the difference
  shows how much the orchestrator adds when many run together;
* Proxmox API calls per deploy;
* collisions: addresses or VMIDs given twice (must be 0) and deploys that did not end active.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from typing import Any

ADMIN_URL = os.environ.get("VPSBRIDGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
WORKER = r"""
import asyncio, json, sys
from vpsbridge.config import load_settings
from vpsbridge.jobs.worker import Worker
from vpsbridge.services.context import AppContext

async def main(o):
    s = load_settings(database_url=o["db"], data_dir=o["dir"], encryption_keys=[o["key"]],
                      time_scale=o["scale"], worker_poll_seconds=0.05, job_lease_seconds=60,
                      job_heartbeat_seconds=15)
    app = await AppContext.create(s)
    w = Worker(app, concurrency=o["concurrency"], periodic=False)
    try:
        await w.run_forever(install_signal_handlers=True)
    finally:
        await app.close()

asyncio.run(main(json.loads(sys.argv[1])))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SimServer:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


async def _create_database() -> tuple[str, str]:
    import asyncpg

    name = f"vpsbridge_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


async def _drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _setup(
    db_url: str, data_dir: str, key: str, scale: float, deploys: int
) -> tuple[Any, Any, Any, int]:
    from vpsbridge.config import load_settings
    from vpsbridge.services import platforms, pools, products
    from vpsbridge.services.audit import Actor
    from vpsbridge.services.context import AppContext
    from vpsbridge.sim.proxmox import ProxmoxState, create_app
    from vpsbridge.sim.proxmox.cluster import standard_cluster
    from vpsbridge.store.db import Database
    from vpsbridge.store.models import Base

    db = Database(db_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    await db.dispose()
    settings = load_settings(database_url=db_url, data_dir=data_dir, encryption_keys=[key], time_scale=scale)
    app = await AppContext.create(settings)
    sim, info = standard_cluster(ProxmoxState(time_scale=scale, seed=1), nodes=4)
    for node in sim.nodes.values():  # room for every deploy of the run
        node.maxmem *= 8
        for storage in node.storages.values():
            storage.total *= 4
    server = SimServer(create_app(sim))
    url = server.start()
    actor = Actor.system("benchmark")
    platform = await platforms.create_platform(
        app,
        {
            "name": "pve",
            "type": "proxmox",
            "url": url,
            "credentials": {"token_id": info.token_id, "token_secret": info.token_secret},
            "settings": {"storage": "local-lvm", "poll_interval": 0.05, "node_concurrency": 8},
        },
        actor,
    )
    product = await products.create_product(
        app,
        {
            "name": "bench",
            "platform": platform.id,
            "plan": {
                "cpu_cores": 2,
                "memory_mb": 2048,
                "disk_gb": 20,
                "template": 9000,
                "additional_disk_gb": 10,
            },
            "placement": {"storage": "local-lvm"},
        },
        actor,
    )
    await pools.create_pool(app, {"name": "v4", "platform": platform.id, "network": "10.0.0.0/16"}, actor)
    await pools.create_pool(app, {"name": "v6", "platform": platform.id, "network": "2001:db8::/64"}, actor)
    return app, sim, server, product.id


async def _run(
    app: Any,
    sim: Any,
    product_id: int,
    count: int,
    workers: int,
    concurrency: int,
    opts: dict[str, Any],
    tag: str,
) -> dict[str, Any]:
    from sqlalchemy import func, select

    from vpsbridge.services.audit import Actor
    from vpsbridge.services.provisioning.proxmox import create_proxmox_service
    from vpsbridge.store.models import IpAddress, Job, Server, Service

    options = json.dumps({**opts, "concurrency": concurrency})
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, options])  # noqa: ASYNC220 - started once, not awaited
        for _ in range(workers)
    ]
    await asyncio.sleep(4.0)  # let the workers import and start polling: startup is not deploy time
    before = len(sim.requests)
    started = time.monotonic()
    ids = []
    for i in range(count):
        out = await create_proxmox_service(
            app,
            {
                "billing_service_id": f"{tag}-{i}",
                "client_id": "bench",
                "product": product_id,
                "options": {"IPv6 Addresses": "1"},
            },
            Actor.system("benchmark"),
        )
        ids.append(out.id)
    try:
        while True:
            async with app.db.session() as session:
                left = await session.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(Job.status.in_(("queued", "running")), Job.kind == "proxmox.deploy")
                )
            if not left:
                break
            await asyncio.sleep(0.1)
        wall = time.monotonic() - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    async with app.db.session() as session:
        statuses = Counter(
            (await session.execute(select(Service.status).where(Service.id.in_(ids)))).scalars()
        )
        addresses = list((await session.execute(select(IpAddress.address))).scalars())
        vmids = [v for v in (await session.execute(select(Server.external_id))).scalars() if v]
    calls = len(sim.requests) - before
    return {
        "deploys": count,
        "workers": workers,
        "wall_s": round(wall, 2),
        "per_deploy_s": round(wall / count, 3),
        "api_calls_per_deploy": round(calls / count, 1),
        "active": statuses.get("active", 0),
        "not_active": count - statuses.get("active", 0),
        "duplicate_addresses": len(addresses) - len(set(addresses)),
        "duplicate_vmids": len(vmids) - len(set(vmids)),
    }


async def main(args: argparse.Namespace) -> int:
    from cryptography.fernet import Fernet

    dropped: str | None = None
    if args.database_url:
        db_url = args.database_url
    else:
        dropped, db_url = await _create_database()
    key = Fernet.generate_key().decode()
    data_dir = tempfile.mkdtemp(prefix="vpsbridge-bench-")
    app = server = None
    try:
        app, sim, server, product_id = await _setup(db_url, data_dir, key, args.scale, args.deploys)
        opts = {"db": db_url, "dir": data_dir, "key": key, "scale": args.scale}
        single = await _run(app, sim, product_id, 1, 1, 1, opts, "single")
        task_seconds = sum(
            (t.ends or t.started) - t.started for t in sim.tasks.values() if t.type not in ("vncproxy",)
        )
        rows = [
            await _run(app, sim, product_id, args.deploys, n, args.concurrency, opts, f"w{n}") for n in (1, 4)
        ]
        report = {
            "scale": args.scale,
            "critical_path_one_deploy_s": single["wall_s"],
            "proxmox_task_time_one_deploy_s": round(task_seconds, 2),
            "runs": rows,
        }
        print(json.dumps(report, indent=2))
        alone = f"one deploy alone: {single['wall_s']} s"
        print(f"\n{alone} (Proxmox tasks {task_seconds:.2f} s at scale {args.scale})")
        header = ("workers", "deploys", "wall s", "x path", "calls/deploy", "collisions", "not active")
        print(" ".join(f"{h:>12}" for h in header))
        for r in rows:
            ratio = r["wall_s"] / max(single["wall_s"], 1e-9)
            collisions = r["duplicate_addresses"] + r["duplicate_vmids"]
            cells = (r["workers"], r["deploys"], r["wall_s"], f"{ratio:.1f}", r["api_calls_per_deploy"])
            print(" ".join(f"{c:>12}" for c in (*cells, collisions, r["not_active"])))
        bad = any(r["duplicate_addresses"] or r["duplicate_vmids"] or r["not_active"] for r in rows)
        return 1 if bad else 0
    finally:
        if app is not None:
            await app.close()
        if server is not None:
            server.stop()
        if dropped:
            await _drop_database(dropped)


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deploys", type=int, default=200)
    parser.add_argument("--scale", type=float, default=0.05, help="task durations and engine waits x this")
    parser.add_argument("--concurrency", type=int, default=16, help="jobs per worker process")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--smoke", action="store_true", help="12 deploys, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.deploys = 12
    sys.exit(asyncio.run(main(args)))


if __name__ == "__main__":
    cli()
