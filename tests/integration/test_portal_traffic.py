"""The portal's traffic chart data: twelve months oldest first, gaps as 0, nothing before the server.

Proves, for the month list (``services.portal.traffic_months``): VirtFusion-style periods (6th to
5th) land under the month they start in, across a year boundary; months the platform did not report
are 0; months before the server existed are left out, the month it was created in stays; an
imported server whose platform knows older months keeps them. Through the web app on the in-memory
platform: the ``/traffic`` answer carries those months and the current counters.
"""

from __future__ import annotations

import datetime as dt

import portal_support
from portal_support import ORIGIN, PortalWorld, app_client, sign_in
from sqlalchemy import update

from vpsbridge.core.traffic import add_months, month_start
from vpsbridge.platforms.models import ServerRef, TrafficMonth, TrafficReport
from vpsbridge.services import portal
from vpsbridge.store.models import Server, Service

world = portal_support.world
pworld = portal_support.pworld

REF = ServerRef(external_id="1")


def utc(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


def period(start: dt.datetime, rx: int, tx: int) -> TrafficMonth:
    return TrafficMonth(period_start=start, period_end=add_months(start, 1), rx_bytes=rx, tx_bytes=tx)


def report(*months: TrafficMonth) -> TrafficReport:
    first = months[0]
    return TrafficReport(
        ref=REF,
        period_start=first.period_start,
        period_end=first.period_end,
        rx_bytes=first.rx_bytes,
        tx_bytes=first.tx_bytes,
        months=months,
    )


def test_periods_map_to_months_across_the_year_boundary_with_gaps_as_zero() -> None:
    history = report(
        period(utc(2026, 2, 6), 60, 6),
        period(utc(2026, 1, 6), 50, 5),
        # December missing: the platform had no row for it
        period(utc(2025, 11, 6), 30, 3),
    )
    months = portal.traffic_months(history, created=utc(2020, 1, 1))
    assert len(months) == 12
    assert months[0]["month"] == "2025-03"
    assert [m["month"] for m in months[-4:]] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert [(m["rx"], m["tx"]) for m in months[-4:]] == [(30, 3), (0, 0), (50, 5), (60, 6)]
    assert all((m["rx"], m["tx"]) == (0, 0) for m in months[:-4])


def test_months_before_the_server_existed_are_left_out() -> None:
    history = report(period(utc(2026, 2, 1), 10, 1), period(utc(2026, 1, 1), 9, 1))
    young = portal.traffic_months(history, created=utc(2025, 12, 20))
    assert [m["month"] for m in young] == ["2025-12", "2026-01", "2026-02"]
    assert young[0]["rx"] == 0
    # our record says "created in February", but the platform knows January: January stays
    imported = portal.traffic_months(history, created=utc(2026, 2, 15))
    assert [m["month"] for m in imported] == ["2026-01", "2026-02"]
    # a driver that gives no history still charts its current period
    bare = TrafficReport(ref=REF, period_start=utc(2026, 2, 1), period_end=utc(2026, 3, 1), rx_bytes=4)
    assert portal.traffic_months(bare, created=None) == [{"month": "2026-02", "rx": 4, "tx": 0}]


async def test_traffic_route_answers_the_months_of_the_service(pworld: PortalWorld) -> None:
    async with pworld.ctx.db.session() as session:
        service = await session.get(Service, pworld.mine)
        assert service is not None
        server_id = service.server_id
        server = await session.get(Server, server_id)
        assert server is not None
        external = int(server.external_id or 0)
    target = pworld.world.cloud.servers[external]
    target.rx_bytes, target.tx_bytes = 5 * 1024**3, 2 * 1024**3
    async with app_client(pworld) as client:
        await sign_in(client, pworld, pworld.mine)
        url = f"/portal/s/{pworld.mine}/traffic"
        fresh = (await client.get(url, headers={"Accept": "application/json"})).json()
        assert [m["month"] for m in fresh["months"]] == [dt.datetime.now(dt.UTC).strftime("%Y-%m")]
        assert (fresh["rx"], fresh["tx"]) == (5 * 1024**3, 2 * 1024**3)
        assert fresh["estimated"] is False

        # an older server (on the platform and in our records) shows a full year
        target.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=600)
        async with pworld.ctx.db.session() as session:
            await session.execute(
                update(Server).where(Server.id == server_id).values(created_at=target.created_at)
            )
        await pworld.ctx.cache.delete(f"portal:traffic:{server_id}")
        answer = await client.get(url, headers={"Accept": "application/json", "Origin": ORIGIN})
        body = answer.json()
        assert answer.headers["cache-control"] == "no-store"
        assert len(body["months"]) == 12
        keys = [m["month"] for m in body["months"]]
        assert keys == sorted(keys)
        assert keys[-1] == month_start(dt.datetime.now(dt.UTC)).strftime("%Y-%m")
        assert (body["months"][-1]["rx"], body["months"][-1]["tx"]) == (5 * 1024**3, 2 * 1024**3)
        assert all(m["rx"] > 0 for m in body["months"][:-1])
