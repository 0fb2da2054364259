"""Live stock recalculation: vpsbridge against a naive per-product, per-group baseline, side by side.

    python benchmarks/stock.py            # 500 products, 40 packages, 20 groups x 50 hypervisors
    python benchmarks/stock.py --smoke    # a tenth of the size, for CI

The VirtFusion simulator runs in-process (ASGI transport) and answers every request after 50 ms
(``--latency``), like a panel across a network. Every stock-controlled product uses one of the
packages and is placed in 1-3 of the groups (fixed seed). Both contenders use the same driver, page
size (200, pages followed) and the same math, and must agree on every quantity:

* **baseline** - how the field's module works: for each product in turn, fetch its package, then each
  of its groups, one request after the other, nothing shared;
* **vpsbridge** - ``services.stock.recalculate``: one fetch per distinct package and group page,
  concurrently, shared by every product, results stored in the database (SQLite here), timed end to
  end including loading products and writing results.

It prints upstream calls and wall time for both and the ratio; the target is calls = distinct
packages + group pages and at least 20x faster. Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from vpsbridge.config import load_settings
from vpsbridge.core.stock import compute_quantity
from vpsbridge.logs import configure_logging
from vpsbridge.platforms.virtfusion.client import MAX_PAGE, VirtFusionClient
from vpsbridge.services import platforms, products
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.stock import EXTRAS_TRANSPORTS, recalculate
from vpsbridge.sim.virtfusion import VirtFusionState, create_app
from vpsbridge.sim.virtfusion.state import Fault
from vpsbridge.store.migrate import upgrade
from vpsbridge.store.secrets import generate_key

URL = "https://panel.bench.test"
TOKEN = "bench-token"


def build_world(groups: int, hypervisors: int, packages: int, latency: float) -> VirtFusionState:
    sim = VirtFusionState(tokens={TOKEN: None})
    rng = random.Random(7)
    for g in range(groups):
        group = sim.add_group(f"G{g + 1}")
        for h in range(hypervisors):
            sim.add_hypervisor(
                group,
                f"G{g + 1}-HV{h + 1}",
                memory_mb=rng.choice((65536, 131072, 262144)),
                cpu_cores=rng.choice((32, 64, 96)),
                storage_gb=rng.choice((2000, 4000, 8000)),
                ipv4_count=rng.choice((16, 32, 64)),
            )
    for p in range(packages):
        sim.add_package(
            f"P{p + 1}",
            memory=rng.choice((1024, 2048, 4096, 8192)),
            storage=rng.choice((25, 50, 80, 160)),
            traffic=1000,
            cpu_cores=rng.choice((1, 2, 4)),
            enabled=p % 13 != 12,
        )
    sim.faults.append(Fault(kind="latency", seconds=latency, times=None))
    return sim


def placements(count: int, packages: int, groups: int) -> list[tuple[int, list[int]]]:
    rng = random.Random(11)
    return [
        (rng.randint(1, packages), rng.sample(range(1, groups + 1), rng.randint(1, min(3, groups))))
        for _ in range(count)
    ]


async def baseline(transport: httpx2.AsyncBaseTransport, plan: list[tuple[int, list[int]]]) -> list[int]:
    """One product after the other; per product its package, then each group, sequentially."""
    client = VirtFusionClient(URL, TOKEN, transport=transport, max_retries=0)
    quantities = []
    try:
        for package_id, group_ids in plan:
            package = await client.package(package_id)
            groups = [await client.group_resources(g) for g in group_ids]
            quantities.append(compute_quantity(package, groups, group_ids=group_ids).quantity)
    finally:
        await client.aclose()
    return quantities


async def ours(
    tmp: Path, transport: httpx2.AsyncBaseTransport, plan: list[tuple[int, list[int]]]
) -> tuple[list[int | None], float]:
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    settings = load_settings(
        database_url=url, data_dir=tmp, encryption_keys=[generate_key()], log_level="warning"
    )
    configure_logging(settings)
    await upgrade(url)
    ctx = await AppContext.create(settings)
    ctx.extras[EXTRAS_TRANSPORTS] = {URL: transport}
    actor = Actor.system("benchmark")
    try:
        await platforms.create_platform(
            ctx, {"name": "vf", "type": "virtfusion", "url": URL, "credentials": {"token": TOKEN}}, actor
        )
        ids = []
        for n, (package_id, group_ids) in enumerate(plan):
            out = await products.create_product(
                ctx,
                {
                    "name": f"product {n + 1}",
                    "platform": "vf",
                    "placement": {"hypervisor_group_id": group_ids[0], "location_group_ids": group_ids[1:]},
                    "plan": {"package_id": package_id, "default_ipv4": 1},
                    "stock_control": True,
                    "stock_buffer_pct": 10.0,
                },
                actor,
            )
            ids.append(out.id)
        started = time.perf_counter()
        report = await recalculate(ctx)
        elapsed = time.perf_counter() - started
        return [report.results[str(i)] for i in ids], elapsed
    finally:
        await ctx.close()


async def main(args: argparse.Namespace) -> int:
    scale = 10 if args.smoke else 1
    n_products, n_packages, n_groups = 500 // scale, 40 // scale, max(2, 20 // scale)
    sim = build_world(n_groups, args.hypervisors, n_packages, args.latency)
    transport = httpx2.ASGITransport(app=create_app(sim))
    plan = placements(n_products, n_packages, n_groups)
    used_packages = {p for p, _ in plan}
    used_groups = {g for _, gs in plan for g in gs}
    pages = -(-args.hypervisors // MAX_PAGE)
    target = len(used_packages) + len(used_groups) * pages

    with tempfile.TemporaryDirectory() as tmp:
        sim.requests.clear()
        ours_quantities, ours_time = await ours(Path(tmp), transport, plan)
        ours_calls = len(sim.requests)

    sim.requests.clear()
    started = time.perf_counter()
    base_quantities = await baseline(transport, plan)
    base_time = time.perf_counter() - started
    base_calls = len(sim.requests)

    agree = ours_quantities == base_quantities
    ratio = base_time / ours_time if ours_time else float("inf")
    print(
        f"{n_products} products, {len(used_packages)} packages, {len(used_groups)} groups x "
        f"{args.hypervisors} hypervisors ({pages} page(s) each), {args.latency * 1000:.0f} ms per call"
    )
    print(f"{'':12}{'upstream calls':>16}{'wall time':>14}")
    print(f"{'baseline':12}{base_calls:>16}{base_time:>13.2f}s")
    print(f"{'vpsbridge':12}{ours_calls:>16}{ours_time:>13.2f}s")
    print(f"ratio: {ratio:.1f}x faster, {base_calls / max(1, ours_calls):.1f}x fewer calls")
    print(f"target calls (packages + group pages): {target} -> {'met' if ours_calls == target else 'MISSED'}")
    print(f"target >= 20x faster -> {'met' if ratio >= 20 else 'MISSED'}")
    print(
        f"quantities agree: {'yes' if agree else 'NO'} (total stock {sum(q or 0 for q in ours_quantities)})"
    )
    return 0 if agree and ours_calls == target and ratio >= 20 else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a tenth of the size, for CI")
    parser.add_argument("--latency", type=float, default=0.05, help="simulator latency per call in seconds")
    parser.add_argument("--hypervisors", type=int, default=50, help="hypervisors per group")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
