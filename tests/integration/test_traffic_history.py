"""Twelve months of traffic from every driver: VirtFusion's own periods, Proxmox's RRD estimates
(PVE 9 and PVE 8 resolutions) and the in-memory platform, each against its simulator.

Proves: months come newest first, at most 12, none before the server existed (a young server has
fewer, its first one partial); the current period keeps the figures usage and billing read; the
same server shows the same history on every call; Proxmox estimates of a past month agree with
the simulator's true volume (exactly on 6 h rows, closely on weekly ones) and are marked estimated.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from proxmox_support import Env, make_env
from test_virtfusion_driver import built_server
from virtfusion_support import make_driver, make_sim

from vpsbridge.core.traffic import add_months, month_start
from vpsbridge.platforms import registry
from vpsbridge.platforms.dummy import DummyCloud
from vpsbridge.platforms.models import ServerRef, ServerSpec, TrafficReport
from vpsbridge.sim.proxmox import rrd

DAY = 86400


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def assert_months_are_ordered(report: TrafficReport) -> None:
    starts = [m.period_start for m in report.months]
    assert starts == sorted(starts, reverse=True), "newest first"
    for newer, older in itertools.pairwise(starts):
        assert add_months(older, 1) == newer, "consecutive periods, none missing or repeated"
    assert report.months[0].period_start == report.period_start
    assert (report.months[0].rx_bytes, report.months[0].tx_bytes) == (report.rx_bytes, report.tx_bytes)


# --- VirtFusion ---------------------------------------------------------------------------------------


async def test_virtfusion_reads_every_period_since_creation() -> None:
    state, app = make_sim()
    driver, _ = make_driver(app)
    try:
        done = await built_server(driver)
        ref = done.server
        assert ref is not None
        server = state.servers[int(ref.external_id)]
        server.rx_bytes, server.tx_bytes = 7 * 1024**3, 3 * 1024**3

        server.created = utcnow() - dt.timedelta(days=500)
        old = await driver.traffic(ref)
        assert len(old.months) == 12
        assert_months_are_ordered(old)
        assert (old.rx_bytes, old.tx_bytes) == (7 * 1024**3, 3 * 1024**3), "current period = counters"
        assert {m.period_start.day for m in old.months} == {min(server.created.day, 28)}
        assert all(m.total_bytes > 0 for m in old.months[1:])
        assert not old.estimated
        assert await driver.traffic(ref) == old, "the same history on every call"

        server.created = utcnow() - dt.timedelta(days=45)
        young = await driver.traffic(ref)
        assert 2 <= len(young.months) <= 3
        assert_months_are_ordered(young)
        first = young.months[-1]
        assert first.period_start <= server.created < first.period_end
        # the first period only counts the days since creation: less than the same server's full months
        full = [m.total_bytes for m in old.months[1:]]
        assert first.total_bytes < max(full)
    finally:
        await driver.aclose()


# --- Proxmox --------------------------------------------------------------------------------------


async def _vm(env: Env, *, created: float) -> ServerRef:
    d = env.driver
    vmid = await d.next_vmid()
    task = await d.clone(9000, vmid, name=f"vps{vmid}")
    await d.wait(task)
    assert task.server is not None
    env.sim.vms[vmid].config["meta"] = f"creation-qemu=9.2.0,ctime={int(created)}"
    await d.wait(await d.power(task.server, "start"))
    return task.server


def true_month(vmid: int, start: dt.datetime) -> float:
    """What the simulator really sent and received in the calendar month starting ``start``."""
    first, last = int(start.timestamp()) // DAY, int(add_months(start, 1).timestamp()) // DAY
    return sum(sum(rrd.daily_rates(vmid, day)) * DAY for day in range(first, last))


@pytest.fixture(params=["9.1.3", "8.3.2"])
async def pve(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    env = make_env(version=request.param)
    yield env
    await env.driver.aclose()


async def test_proxmox_estimates_twelve_calendar_months(pve: Env) -> None:
    ref = await _vm(pve, created=time.time() - 700 * DAY)
    report = await pve.driver.traffic(ref)
    assert report.estimated
    assert len(report.months) == 12
    assert_months_are_ordered(report)
    assert all(m.period_start.day == 1 and m.period_start.hour == 0 for m in report.months)
    assert report.period_start == month_start(utcnow())
    assert all(m.rx_bytes > 0 and m.tx_bytes > 0 for m in report.months)
    timeframes = [p["timeframe"] for _, _path, p in pve.requests("GET", "/rrddata")]
    assert sorted(timeframes) == ["month", "year"]

    # a complete past month against the simulator's truth
    tolerance = 0.001 if pve.sim.version.startswith("9") else 0.05  # 6 h rows vs weekly averages
    for month in report.months[2:5]:
        truth = true_month(int(ref.external_id), month.period_start)
        assert month.total_bytes == pytest.approx(truth, rel=tolerance), month.period_start


async def test_proxmox_leaves_out_months_before_the_vm_existed(pve: Env) -> None:
    created = utcnow() - dt.timedelta(days=50)
    ref = await _vm(pve, created=created.timestamp())
    report = await pve.driver.traffic(ref)
    assert_months_are_ordered(report)
    oldest = report.months[-1]
    assert oldest.period_start == month_start(created), "starts with the month it was created in"
    assert len(report.months) <= 3
    if len(report.months) > 2:  # the creation month is a past, partial one
        full = true_month(int(ref.external_id), oldest.period_start)
        assert 0 < oldest.total_bytes < full


async def test_proxmox_sim_rows_follow_the_rrd_format() -> None:
    for version, timeframe, step, count in (
        ("9.1.3", "year", 21600, 1440),
        ("9.1.3", "month", 1800, 1440),
        ("9.1.3", "day", 60, 1440),
        ("8.3.2", "year", 604800, 70),
        ("8.3.2", "month", 43200, 70),
        ("8.3.2", "hour", 60, 70),
    ):
        env = make_env(version=version)
        try:
            ref = await _vm(env, created=time.time() - 3 * DAY)
            rows = await env.driver.rrd(ref, timeframe)
            assert len(rows) == count, (version, timeframe)
            assert {b["time"] - a["time"] for a, b in itertools.pairwise(rows)} == {step}
            assert rows[-1]["time"] + step <= time.time() < rows[-1]["time"] + 2 * step
            if count * step > 4 * DAY:  # the series reaches back before the VM was created
                assert set(rows[0]) == {"time"}, "rows before the VM existed carry no values"
            if step <= DAY:
                assert "netin" in rows[-1]
        finally:
            await env.driver.aclose()


# --- the in-memory platform -----------------------------------------------------------------------


async def test_dummy_history_is_stable_and_starts_at_creation() -> None:
    url = f"dummy://{uuid.uuid4().hex}"
    driver = registry.create_driver(
        "dummy", url=url, credentials={"token": "t"}, settings={"task_seconds": 0}
    )
    try:
        spec: dict[str, Any] = {"hostname": "h.example.net", "cpu_cores": 1, "memory_mb": 512, "disk_gb": 10}
        task = await driver.create_server(ServerSpec(os_template="debian-12", **spec))
        assert task.server is not None
        server = DummyCloud.for_url(url).servers[int(task.server.external_id)]
        server.rx_bytes = 1234

        fresh = await driver.traffic(task.server)
        assert len(fresh.months) == 1
        assert fresh.months[0].rx_bytes == 1234

        server.created_at = utcnow() - dt.timedelta(days=800)
        old = await driver.traffic(task.server)
        assert len(old.months) == 12
        assert_months_are_ordered(old)
        assert old.rx_bytes == 1234
        assert all(m.total_bytes > 0 for m in old.months[1:])
        assert await driver.traffic(task.server) == old
    finally:
        DummyCloud.reset(url)
