"""The billing stock query on SQLite and PostgreSQL: products synced by billing id, only stock-controlled
ones answered, fresh results served as they are, stale ones recomputed (page views once per 60 s),
provisions answered with fresh capacity; plus the operator API and the CLI's compute command."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from stock_shapes import entry, package
from stock_support import StockWorld, world
from typer.testing import CliRunner
from virtfusion_support import make_driver, spec

from vpsbridge.cli.main import app as cli_app
from vpsbridge.services import products, tokens
from vpsbridge.services.audit import Actor
from vpsbridge.services.stock import BillingStockQuery, stock_for_billing
from vpsbridge.sim.virtfusion.app import create_app
from vpsbridge.sim.virtfusion.state import Fault
from vpsbridge.web.app import create_app as create_web_app

__all__ = ["world"]


def _new(bid: str, **fields: object) -> BillingStockQuery:
    settings = {
        "name": f"WHMCS {bid}",
        "platform": "vf",
        "placement": {"hypervisor_group_id": 1},
        "plan": {"package_id": 1, "default_ipv4": 1},
        **fields,
    }
    return BillingStockQuery(billing_product_id=bid, product=settings)


async def test_unknown_and_uncontrolled_products_get_no_quantity(world: StockWorld) -> None:
    w = world
    answers = await stock_for_billing(
        w.ctx,
        [
            BillingStockQuery(billing_product_id="404"),
            BillingStockQuery(
                billing_product_id="7", stock_control=False, product={"name": "x", "platform": "vf"}
            ),
        ],
    )
    assert answers == {"404": None, "7": None}
    assert w.sim.requests == []
    created = await products.get_product_by_billing_id(w.ctx, "7")
    assert created is not None
    assert created.stock_control is False


async def test_products_are_created_and_locations_synced(world: StockWorld) -> None:
    w = world
    query = BillingStockQuery(
        billing_product_id="12",
        locations=["1|London", "2|Frankfurt", "0|None", "x"],
        product={
            "name": "VPS",
            "platform": "vf",
            "placement": {"hypervisor_group_id": 1},
            "plan": {"package_id": 3},
        },
    )
    answers = await stock_for_billing(w.ctx, [query], trigger="cron")
    stored = await products.get_product_by_billing_id(w.ctx, "12")
    assert stored is not None
    assert stored.placement == {"hypervisor_group_id": 1, "location_group_ids": [1, 2]}
    assert answers["12"] is not None
    assert answers["12"] > 0
    assert w.calls("/compute/hypervisors/groups/2/resources") == 1
    # Dropping a location is synced too; stock control switched off in WHMCS means no answer.
    await stock_for_billing(w.ctx, [BillingStockQuery(billing_product_id="12", locations=["1|London"])])
    stored = await products.get_product_by_billing_id(w.ctx, "12")
    assert stored is not None
    assert stored.placement["location_group_ids"] == [1]
    off = await stock_for_billing(w.ctx, [BillingStockQuery(billing_product_id="12", stock_control=False)])
    assert off == {"12": None}


async def test_fresh_results_are_served_without_asking_the_panel(world: StockWorld) -> None:
    w = world
    first = await stock_for_billing(w.ctx, [_new("1"), _new("2", plan={"package_id": 999})], trigger="cron")
    assert first == {"1": 48, "2": 0}
    calls = len(w.sim.requests)
    again = await stock_for_billing(w.ctx, [BillingStockQuery("1"), BillingStockQuery("2")], trigger="page")
    assert again == first
    assert len(w.sim.requests) == calls


async def test_stale_results_are_recomputed_once_per_minute_from_page_views(world: StockWorld) -> None:
    w = world
    await stock_for_billing(w.ctx, [_new("1")], trigger="cron")
    await w.age_results(31)
    await w.ctx.cache.delete("stock:1:group:1")
    before = w.calls("/compute/hypervisors/groups/1")
    w.sim.faults.append(Fault(kind="status", status=500, path="/compute/hypervisors/groups/1", times=None))
    # Recomputed (the panel is asked), but the answer is unknown: leave WHMCS alone.
    assert await stock_for_billing(w.ctx, [BillingStockQuery("1")]) == {"1": None}
    asked = w.calls("/compute/hypervisors/groups/1")
    assert asked == before + 1
    w.sim.faults.clear()
    await w.age_results(31)
    # A second page view within 60 s does not recompute.
    assert await stock_for_billing(w.ctx, [BillingStockQuery("1")], trigger="cart") == {"1": None}
    assert w.calls("/compute/hypervisors/groups/1") == asked
    # The cron hook always recomputes what is stale.
    assert await stock_for_billing(w.ctx, [BillingStockQuery("1")], trigger="cron") == {"1": 48}


async def test_a_provision_is_answered_with_fresh_capacity(world: StockWorld) -> None:
    w = world
    assert await stock_for_billing(w.ctx, [_new("1")], trigger="cron") == {"1": 48}
    driver, _ = make_driver(create_app(w.sim))
    try:
        await driver.create_server(spec(os_template=None))
    finally:
        await driver.aclose()
    # A page view within 30 s still gets the stored figure; the provision hook gets the new one.
    assert await stock_for_billing(w.ctx, [BillingStockQuery("1")]) == {"1": 48}
    assert await stock_for_billing(w.ctx, [BillingStockQuery("1")], trigger="provision") == {"1": 47}
    assert await stock_for_billing(w.ctx, [BillingStockQuery("1")]) == {"1": 47}


async def test_unknown_trigger_is_refused(world: StockWorld) -> None:
    with pytest.raises(ValueError, match="unknown stock trigger"):
        await stock_for_billing(world.ctx, [], trigger="later")  # type: ignore[arg-type]


async def test_operator_api(world: StockWorld) -> None:
    w = world
    product = await w.product("1G", package_id=1)
    _, read = await tokens.create_token(w.ctx, "r", "read", Actor.cli())
    _, write = await tokens.create_token(w.ctx, "w", "write", Actor.cli())
    app = create_web_app(context=w.ctx)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client,
    ):
        auth = {"Authorization": f"Bearer {write}"}
        denied = await client.post("/api/v1/stock/recalculate", headers={"Authorization": f"Bearer {read}"})
        assert denied.status_code == 403
        done = await client.post("/api/v1/stock/recalculate", headers=auth, json={})
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["results"] == {str(product): 48}
        assert body["summary"] == {"total": 1, "updated": 1, "zeroed": 0, "skipped": 0}
        listed = (await client.get("/api/v1/stock", headers=auth)).json()
        assert [(r["product"], r["quantity"], r["status"]) for r in listed] == [("1G", 48, "ok")]
        why = await client.get("/api/v1/stock/1G/explain", headers=auth)
        assert why.status_code == 200
        assert why.json()["breakdown"]["groups"][0]["binding"] == "ipv4"
        missing = await client.get("/api/v1/stock/nope/explain", headers=auth)
        assert missing.status_code == 404


def test_cli_compute_reads_saved_answers(tmp_path: Path) -> None:
    pkg = tmp_path / "package.json"
    pkg.write_text(json.dumps({"data": package(memory=2048, cores=2, storage=20)}))
    g1 = tmp_path / "g1.json"
    g1.write_text(json.dumps({"current_page": 1, "last_page": 1, "data": [entry(1, ipv4=3)]}))
    g2 = tmp_path / "g2.json"
    g2.write_text(json.dumps([entry(2, ipv4=2), entry(3, ipv4=9, enabled=False)]))
    result = CliRunner().invoke(
        cli_app,
        ["stock", "compute", "--package", str(pkg), "--group", str(g1), "--group", str(g2), "--ipv4", "1"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["quantity"] == 5
    assert [g["binding"] for g in out["breakdown"]["groups"]] == ["ipv4", "ipv4"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": {"memory": "?"}}))
    failed = CliRunner().invoke(cli_app, ["stock", "compute", "--package", str(bad), "--group", str(g1)])
    assert failed.exit_code == 1
