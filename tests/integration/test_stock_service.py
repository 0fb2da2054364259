"""Stock services against the VirtFusion simulator on SQLite and PostgreSQL: faults leave products
untouched while others update, confirmed-missing and disabled packages give 0, fetches are shared,
cached and single-flight, and the stored results carry the breakdown explain shows."""

from __future__ import annotations

import asyncio

from stock_support import StockWorld, world
from virtfusion_support import make_driver, spec

from vpsbridge.core.stock import compute_quantity
from vpsbridge.services.stock import explain, explain_lines, recalculate, results
from vpsbridge.sim.virtfusion.app import create_app
from vpsbridge.sim.virtfusion.state import Fault
from vpsbridge.workflows.stock_recalc import stock_recalc

__all__ = ["world"]


async def _quantities(w: StockWorld) -> dict[int, tuple[int | None, str]]:
    return {r.product_id: (r.quantity, r.status) for r in await results(w.ctx)}


async def test_recalculate_matches_the_math_on_what_the_panel_reports(world: StockWorld) -> None:
    w = world
    small = await w.product("1G London", package_id=1)
    big = await w.product("4G both", package_id=3, locations=[2])
    report = await recalculate(w.ctx)
    driver, _ = make_driver(create_app(w.sim))
    try:
        pkg1, pkg3 = await driver.package(1), await driver.package(3)
        g1, g2 = await driver.group_resources(1), await driver.group_resources(2)
    finally:
        await driver.aclose()
    assert report.results[str(small)] == compute_quantity(pkg1, [g1]).quantity == 48  # IPv4 pool binds
    assert report.results[str(big)] == compute_quantity(pkg3, [g1, g2], group_ids=[1, 2]).quantity
    assert report.summary.model_dump() == {"total": 2, "updated": 2, "zeroed": 0, "skipped": 0}


async def test_one_group_timing_out_leaves_the_product_untouched_while_others_update(
    world: StockWorld,
) -> None:
    w = world
    both = await w.product("4G London+Frankfurt", package_id=3, locations=[2])
    london = await w.product("4G London", package_id=3, group_id=1)
    await recalculate(w.ctx)
    first = await _quantities(w)
    w.fill(1, 20000)  # London loses memory on every hypervisor
    w.sim.faults.append(
        Fault(kind="timeout", path="/compute/hypervisors/groups/2/resources", seconds=5, times=None)
    )
    report = await recalculate(w.ctx, forget=True)
    after = await _quantities(w)
    assert report.results[str(both)] is None
    assert after[both] == (first[both][0], "unknown")  # last known quantity kept
    assert after[london][1] == "ok"
    assert after[london][0] is not None
    assert first[london][0] is not None
    assert after[london][0] < first[london][0]
    assert report.summary.skipped == 1
    lines = explain_lines(await explain(w.ctx, both))
    assert any("unknown input" in line and "hypervisor group 2" in line for line in lines)


async def test_server_errors_and_malformed_bodies_are_unknown_too(world: StockWorld) -> None:
    w = world
    product = await w.product("1G", package_id=1)
    await recalculate(w.ctx)
    w.sim.faults.append(Fault(kind="status", status=503, path="/packages/1", times=1))
    w.sim.faults.append(Fault(kind="malformed", path="/compute/hypervisors/groups/1/resources", times=1))
    await w.ctx.cache.delete("stock:1:package:1")
    report = await recalculate(w.ctx, forget=True)
    assert report.results[str(product)] is None
    assert (await _quantities(w))[product] == (48, "unknown")


async def test_missing_package_and_disabled_package_give_zero(world: StockWorld) -> None:
    w = world
    gone = await w.product("gone", package_id=999)
    retired = await w.product("retired", package_id=5)
    report = await recalculate(w.ctx)
    assert report.results == {str(gone): 0, str(retired): 0}
    assert report.summary.zeroed == 2
    statuses = await _quantities(w)
    assert statuses[gone] == (0, "missing")
    assert statuses[retired] == (0, "disabled")
    # The 404 is cached for a minute: asking again does not ask the panel again.
    before = w.calls("/packages/999")
    await recalculate(w.ctx)
    assert w.calls("/packages/999") == before == 1


async def test_missing_package_wins_over_a_failing_group(world: StockWorld) -> None:
    w = world
    gone = await w.product("gone", package_id=999, locations=[2])
    w.sim.faults.append(Fault(kind="status", status=500, path="/compute/hypervisors/groups/2", times=None))
    assert (await recalculate(w.ctx)).results[str(gone)] == 0


async def test_deleted_group_contributes_zero(world: StockWorld) -> None:
    w = world
    product = await w.product("1G", package_id=1, locations=[77])
    report = await recalculate(w.ctx)
    assert report.results[str(product)] == 48
    text = "\n".join(explain_lines(await explain(w.ctx, product)))
    assert "group 77: 0 (the group no longer exists)" in text


async def test_each_package_and_group_is_fetched_once_and_cached(world: StockWorld) -> None:
    w = world
    for n in range(8):
        await w.product(f"a{n}", package_id=1 + n % 2, group_id=1, locations=[2])
    await asyncio.gather(recalculate(w.ctx), recalculate(w.ctx), recalculate(w.ctx))
    assert w.calls("/packages/1") == 1
    assert w.calls("/packages/2") == 1
    assert w.calls("/compute/hypervisors/groups/1/resources") == 1
    assert w.calls("/compute/hypervisors/groups/2/resources") == 1
    # Largest page size asked for.
    assert all("results=200" in str(r.url) for r, _, _ in w.transport.exchanges if "resources" in r.url.path)
    await recalculate(w.ctx)  # everything cached
    assert len(w.sim.requests) == 4
    await recalculate(w.ctx, forget=True)  # capacity asked afresh, packages still cached
    assert w.calls("/compute/hypervisors/groups/1/resources") == 2
    assert w.calls("/packages/1") == 1


async def test_group_resources_follow_pagination(world: StockWorld) -> None:
    w = world
    group = w.sim.groups[1]
    for n in range(205):  # more than one page of 200
        w.sim.add_hypervisor(group, f"extra{n}", memory_mb=4096, cpu_cores=4, storage_gb=100, ipv4_count=1)
    product = await w.product("1G", package_id=1)
    report = await recalculate(w.ctx)
    assert w.calls("/compute/hypervisors/groups/1/resources") == 2
    groups = (await explain(w.ctx, product)).breakdown["groups"]
    assert len(groups[0]["hosts"]) == 208
    assert report.results[str(product)] == 48


async def test_periodic_task_logs_untouched_products(world: StockWorld) -> None:
    w = world
    await w.product("ok", package_id=1)
    await w.product("blip", package_id=2, group_id=2)
    w.sim.faults.append(Fault(kind="status", status=502, path="/compute/hypervisors/groups/2", times=None))
    lines: list[tuple[str, str]] = []

    async def log(message: str, level: str = "info") -> None:
        lines.append((level, message))

    result = await stock_recalc(w.ctx, log)
    assert (result.processed, result.errors) == (2, 1)
    assert result.details == {"total": 2, "updated": 1, "zeroed": 0, "skipped": 1}
    assert any(level == "warning" and "blip" in message for level, message in lines)


async def test_products_without_stock_control_are_not_recalculated(world: StockWorld) -> None:
    w = world
    await w.product("manual", package_id=1, stock_control=False)
    report = await recalculate(w.ctx)
    assert report.summary.total == 0
    assert w.sim.requests == []
    rows = await results(w.ctx)
    assert rows[0].status == "never"


async def test_explain_names_the_binding_resource_and_the_buffer(world: StockWorld) -> None:
    w = world
    product = await w.product("4G", package_id=3, buffer=25)
    expl = await explain(w.ctx, product, fresh=True)
    text = "\n".join(explain_lines(expl))
    assert expl.buffer_pct == 25
    assert "buffer 25.0 %" in text
    assert "LON-HV1: " in text
    assert "bound by CPU" in text


async def test_a_provision_lowers_the_next_forced_recalculation(world: StockWorld) -> None:
    w = world
    product = await w.product("1G", package_id=1)
    assert (await recalculate(w.ctx)).results[str(product)] == 48
    driver, _ = make_driver(create_app(w.sim))
    try:
        await driver.create_server(spec(os_template=None))
    finally:
        await driver.aclose()
    assert (await recalculate(w.ctx)).results[str(product)] == 48  # group answer still cached
    assert (await recalculate(w.ctx, [product], forget=True)).results[str(product)] == 47
