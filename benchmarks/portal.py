"""Client portal: the server overview page under load against ``/healthz`` on the same server, same run.

    python benchmarks/portal.py            # 4000 requests per endpoint at concurrency 50
    python benchmarks/portal.py --smoke    # 300 requests per endpoint, for CI (a few seconds)

A child process plays the demo: a migrated SQLite database, the VirtFusion simulator served over HTTP
on its own loopback port (a platform row points at it, so the driver talks HTTP exactly as to a real
panel), one provisioned service, and vpsbridge's web app under uvicorn on loopback. This process is
the load generator: it signs in through a one-time portal link like a customer, then drives
``GET /portal/s/<id>`` (the overview, upstream reads cached) and ``GET /healthz`` (no I/O) with 50
requests in flight each, one after the other, against the same server. Keeping the generator in its
own process means the server's event loop serves requests only.

It prints requests/s, p50 and p99 for both and the ratio, then upstream calls per page view counted
by the simulator itself (every request it answers is recorded): the overview and each panel endpoint
viewed once cold and once again warm. Targets: at most one upstream call for a page view, zero for a
cached one. Exit code 1 when a target is missed or any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

TOKEN = "bench-virtfusion-token"
CONCURRENCY = 50
#: Prefix of the child's answers on stdout (log lines may share the stream).
MARK = "@@bench "


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- the server (child process) -------------------------------------------------------------------


async def _serve(data_dir: Path) -> None:
    """Seed, provision one service, print what the generator needs, then serve until stdin closes.

    Lines on stdin are commands: ``count`` answers the number of requests the simulator has answered.
    """
    import uvicorn

    # Answers go to the parent on the original stdout; the app's request log goes to /dev/null, so a
    # full pipe never stalls the server while the parent is busy generating load.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)

    from vpsbridge.config import load_settings
    from vpsbridge.jobs.worker import Worker
    from vpsbridge.services import platforms, portal, products
    from vpsbridge.services.audit import Actor
    from vpsbridge.services.context import AppContext
    from vpsbridge.services.provisioning import create_service
    from vpsbridge.sim.virtfusion import VirtFusionState
    from vpsbridge.sim.virtfusion import create_app as create_sim
    from vpsbridge.store.migrate import upgrade
    from vpsbridge.store.secrets import generate_key
    from vpsbridge.web.app import create_app

    actor = Actor.system("benchmark")
    db_url = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
    await upgrade(db_url)
    settings = load_settings(
        database_url=db_url,
        data_dir=data_dir,
        encryption_keys=[generate_key()],
        secure_cookies=False,
        time_scale=0.01,
        worker_poll_seconds=0.05,
        task_intervals={},
        log_level="warning",
    )
    ctx = await AppContext.create(settings)

    sim = VirtFusionState(tokens={TOKEN: None}, task_seconds=0.05, ipv6_delay_seconds=0.05).seed_demo()
    sim_port, web_port = _free_port(), _free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                create_sim(sim), host="127.0.0.1", port=sim_port, log_config=None, access_log=False
            )
        ),
        uvicorn.Server(
            uvicorn.Config(
                create_app(context=ctx, migrate=False),
                host="127.0.0.1",
                port=web_port,
                log_config=None,
                access_log=False,
                lifespan="on",
            )
        ),
    ]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    while not all(s.started for s in servers):  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.02)

    await platforms.create_platform(
        ctx,
        {
            "name": "vf",
            "type": "virtfusion",
            "url": sim_url,
            "credentials": {"token": TOKEN},
            "settings": {"hypervisor_group_id": 1, "package_id": 1, "panel_url": sim_url},
        },
        actor,
    )
    await products.create_product(
        ctx,
        {
            "name": "vf-1g",
            "platform": "vf",
            "placement": {"hypervisor_group_id": 1},
            "plan": {"package_id": 1, "default_ipv4": 1},
        },
        actor,
    )
    out = await create_service(
        ctx,
        {
            "billing_service_id": "9001",
            "client_id": "501",
            "client": {"name": "Ada Lovelace", "email": "ada@example.net"},
            "product": "vf-1g",
            "os_template": "1",
            "hostname": "bench1.example.net",
        },
        actor,
    )
    await Worker(ctx, concurrency=2, periodic=False, wakeup=False).run_until_idle(timeout=60)
    origin = f"http://127.0.0.1:{web_port}"
    link = await portal.mint_portal_link(ctx, out.id, actor, base_url=origin)
    print(
        MARK + json.dumps({"origin": origin, "link": link.url, "service_id": out.id}),
        file=answers,
        flush=True,
    )

    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if line.strip() == "count":
            print(MARK + json.dumps({"count": len(sim.requests)}), file=answers, flush=True)
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*tasks)
    await ctx.close()


# --- the load generator (this process) ------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    failures: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _load(client: httpx2.AsyncClient, name: str, path: str, total: int) -> Result:
    latencies: list[float] = []
    failures = 0
    remaining = total

    async def one_worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                answer = await client.get(path)
                ok = answer.status_code == 200
            except httpx2.HTTPError:  # a timeout under load counts as a failed request, not a crash
                ok = False
            latencies.append(time.perf_counter() - started)
            failures += not ok

    started = time.perf_counter()
    await asyncio.gather(*(one_worker() for _ in range(CONCURRENCY)))
    return Result(name, total, time.perf_counter() - started, latencies, failures)


class Server:
    """The child process and its command pipe."""

    def __init__(self, data_dir: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit("the benchmark server stopped")
            if line.startswith(MARK):
                data: dict[str, Any] = json.loads(line.removeprefix(MARK))
                return data

    def upstream_calls(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self._read()["count"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


async def _calls_per_view(
    server: Server, client: httpx2.AsyncClient, paths: dict[str, str]
) -> list[tuple[str, int, int]]:
    """(panel, upstream calls on the first view, upstream calls on a second view) per path.

    Panels the platform does not offer (404 ``not_supported``, e.g. backups on VirtFusion) are left out.
    """
    rows = []
    for name, path in paths.items():
        counts = []
        for _ in range(2):
            before = server.upstream_calls()
            answer = await client.get(path)
            if answer.status_code == 404 and "not_supported" in answer.text:
                break
            if answer.status_code != 200:
                raise SystemExit(f"{path} answered {answer.status_code}")
            counts.append(server.upstream_calls() - before)
        if counts:
            rows.append((name, counts[0], counts[1]))
        else:
            print(f"({name}: not offered by this platform)")
    return rows


async def _run(args: argparse.Namespace) -> int:
    total = 300 if args.smoke else args.requests
    with tempfile.TemporaryDirectory(prefix="vpsb-portal-bench-") as tmp:
        server = Server(Path(tmp))
        try:
            origin, sid = server.info["origin"], server.info["service_id"]
            limits = httpx2.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
            async with httpx2.AsyncClient(base_url=origin, limits=limits, timeout=60) as client:
                before_signin = server.upstream_calls()
                signin = await client.get(server.info["link"].removeprefix(origin))
                if signin.status_code != 303:
                    raise SystemExit(f"sign-in answered {signin.status_code}: {signin.text[:200]}")
                # Sign-in fetches the product's OS list once, so the overview can name the OS.
                print(f"upstream calls at sign-in: {server.upstream_calls() - before_signin}")
                overview = f"/portal/s/{sid}"
                # upstream calls first, on a cold cache: the load below warms it
                calls = await _calls_per_view(
                    server,
                    client,
                    {
                        "overview": overview,
                        "state badge": f"{overview}/state",
                        "traffic": f"{overview}/traffic",
                        "live stats": f"{overview}/stats",
                        "backups": f"{overview}/backups",
                        "reverse DNS": f"{overview}/rdns",
                    },
                )
                await _load(client, "warm-up", "/healthz", CONCURRENCY)
                before = server.upstream_calls()
                page = await _load(client, "overview", overview, total)
                load_calls = server.upstream_calls() - before
                health = await _load(client, "/healthz", "/healthz", total)
        finally:
            server.close()

    print(f"\nconcurrency {CONCURRENCY}, {total} requests each, SQLite, VirtFusion simulator over HTTP\n")
    print(f"{'endpoint':<12} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'failed':>7}")
    for r in (page, health):
        p50, p99 = r.percentile(0.5), r.percentile(0.99)
        print(f"{r.name:<12} {r.rps:>9.0f} {p50:>9.1f} {p99:>9.1f} {r.failures:>7}")
    print(f"{'ratio':<12} {page.rps / health.rps:>9.2f}   (overview req/s / healthz req/s)")
    per_view = load_calls / total
    print(f"\nupstream calls during the {total} overview views: {load_calls} ({per_view:.3f} per view)")
    print(f"\n{'panel':<14} {'first view':>11} {'cached view':>12}")
    for name, first, second in calls:
        print(f"{name:<14} {first:>11} {second:>12}")

    missed = []
    if page.failures or health.failures:
        missed.append("some requests failed")
    if any(first > 1 for _, first, _ in calls):
        missed.append("a page view made more than one upstream call")
    if any(second != 0 for name, _, second in calls if name != "state badge"):
        missed.append("a cached panel called upstream again")
    if load_calls > 1:
        missed.append("the overview under load called upstream more than once")
    for problem in missed:
        print(f"TARGET MISSED: {problem}")
    return 1 if missed else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a small run for CI")
    parser.add_argument("--requests", type=int, default=4000, help="requests per endpoint")
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(Path(args.serve)))
        return
    sys.exit(asyncio.run(_run(args)))


if __name__ == "__main__":
    main()
