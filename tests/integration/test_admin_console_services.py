"""Read models and operator actions of the console services, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from admin_support import ACTOR, audit_actions, ctx, seed_catalog, seed_job
from sqlalchemy import func, select

from vpsbridge.services import admin_console as console
from vpsbridge.services.admin_console import AuditQuery, ServiceFilter, UpstreamQuery
from vpsbridge.services.audit import record
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.store.models import Job, JobLog, JobStep, Product, UpstreamRequest

__all__ = ["ctx"]


async def test_dashboard_counts_services_jobs_and_catalog(ctx: AppContext) -> None:
    await seed_catalog(ctx)
    failed = await seed_job(ctx)
    await seed_job(ctx, status="succeeded", error=None)
    retrying = await seed_job(ctx, status="queued", error="timed out")
    board = await console.dashboard(ctx)
    assert board.services_by_status == {"active": 1, "failed": 1, "suspended": 1}
    assert board.service_total == 3
    assert board.servers_by_state == {"pending": 1, "running": 1, "stopped": 1}
    assert board.jobs_by_status == {"failed": 1, "succeeded": 1, "queued": 1}
    assert {j.id for j in board.failing_jobs} == {failed, retrying}
    assert board.catalog == {"platforms": 1, "products": 1, "ip_pools": 0, "dns_providers": 0}
    assert [s.product for s in board.stock] == ["Small VPS"]


async def test_job_detail_has_step_timings_log_and_upstream(ctx: AppContext) -> None:
    job_id = await seed_job(ctx, steps=[("reserve", "done", 0.25), ("create", "fail", 1.5)])
    detail = await console.job_detail(ctx, job_id)
    assert [(s.name, s.outcome, s.duration_ms) for s in detail.steps] == [
        ("reserve", "done", 250.0),
        ("create", "fail", 1500.0),
    ]
    assert [line.message for line in detail.log] == ["reserve finished: done", "create finished: fail"]
    assert [(r.method, r.status) for r in detail.upstream] == [("POST", 500)]
    assert detail.job.resettable
    assert detail.job.finished
    with pytest.raises(NotFound):
        await console.job_detail(ctx, job_id + 100)


async def test_waiting_and_running_are_told_apart(ctx: AppContext) -> None:
    parked = await seed_job(ctx, status="running", error=None)
    held = await seed_job(ctx, status="running", error=None, lease_owner="host:1:w")
    assert [j.id for j in await console.list_jobs(ctx, status="waiting")] == [parked]
    assert [j.id for j in await console.list_jobs(ctx, status="running")] == [held]
    assert await console.jobs_by_status(ctx) == {"waiting": 1, "running": 1}


async def test_delete_job_only_when_finished_and_audited(ctx: AppContext) -> None:
    finished = await seed_job(ctx)
    live = await seed_job(ctx, status="running", lease_owner="host:1:w", error=None)
    with pytest.raises(Conflict):
        await console.delete_job(ctx, live, ACTOR)
    await console.delete_job(ctx, finished, ACTOR)
    async with ctx.db.session() as session:
        assert await session.get(Job, finished) is None
        for model in (JobStep, JobLog):
            left = await session.scalar(
                select(func.count()).select_from(model).where(model.job_id == finished)
            )
            assert left == 0  # steps and log lines went with it
    rows = await audit_actions(ctx, "job.delete")
    assert [(r.object_id, r.actor_id) for r in rows] == [(str(finished), "1")]
    with pytest.raises(NotFound):
        await console.delete_job(ctx, finished, ACTOR)


async def test_upstream_search_filters_and_pages(ctx: AppContext) -> None:
    async with ctx.db.session() as session:
        for n in range(5):
            session.add(
                UpstreamRequest(
                    client="virtfusion:1" if n % 2 else "powerdns:2",
                    method="GET" if n < 3 else "PATCH",
                    url=f"https://api.example/servers/{n}?q=100%_done",
                    status=200 if n != 4 else 503,
                    outcome="value" if n != 4 else "unknown",
                    error="upstream timed out" if n == 4 else None,
                )
            )
    everything = await console.search_upstream(ctx, UpstreamQuery())
    assert [r.url.rsplit("/", 1)[1][0] for r in everything] == ["4", "3", "2", "1", "0"]
    assert len(await console.search_upstream(ctx, UpstreamQuery(client="powerdns:2"))) == 3
    assert len(await console.search_upstream(ctx, UpstreamQuery(method="patch"))) == 2
    assert [r.status for r in await console.search_upstream(ctx, UpstreamQuery(outcome="unknown"))] == [503]
    assert len(await console.search_upstream(ctx, UpstreamQuery(q="TIMED OUT"))) == 1
    # LIKE wildcards typed by the operator are literal characters.
    assert len(await console.search_upstream(ctx, UpstreamQuery(q="100%_"))) == 5
    assert await console.search_upstream(ctx, UpstreamQuery(q="1000")) == []
    page = await console.search_upstream(ctx, UpstreamQuery(before_id=everything[1].id, limit=2))
    assert [r.id for r in page] == [everything[2].id, everything[3].id]
    assert (await console.get_upstream(ctx, everything[0].id)) == everything[0]
    assert await console.upstream_clients(ctx) == ["powerdns:2", "virtfusion:1"]


async def test_upstream_bodies_are_scrubbed_on_the_way_out(ctx: AppContext) -> None:
    from vpsbridge.logs import register_secret_values

    register_secret_values(["s3cr3t-platform-token-value"])
    async with ctx.db.session() as session:
        session.add(
            UpstreamRequest(
                client="virtfusion:1",
                method="POST",
                url="https://x/api",
                status=401,
                outcome="unknown",
                request_body='{"t": "s3cr3t-platform-token-value"}',
            )
        )
    (row,) = await console.search_upstream(ctx, UpstreamQuery())
    assert row.request_body is not None
    assert "s3cr3t-platform-token-value" not in row.request_body


async def test_audit_listing_filters(ctx: AppContext) -> None:
    async with ctx.db.session() as session:
        await record(session, ACTOR, "job.cancel", "job", 4)
        await record(session, ACTOR, "job.reset", "job", 4, {"mode": "retry"})
        await record(session, ACTOR, "platform.update", "platform", 1)
    assert [e.action for e in await console.list_audit(ctx, AuditQuery())] == [
        "platform.update",
        "job.reset",
        "job.cancel",
    ]
    assert [e.action for e in await console.list_audit(ctx, AuditQuery(action="job."))] == [
        "job.reset",
        "job.cancel",
    ]
    assert [e.action for e in await console.list_audit(ctx, AuditQuery(action="job"))] == []
    assert len(await console.list_audit(ctx, AuditQuery(object_type="job", object_id="4"))) == 2
    assert len(await console.list_audit(ctx, AuditQuery(q="PLATFORM"))) == 1
    newest = (await console.list_audit(ctx, AuditQuery()))[0]
    assert len(await console.list_audit(ctx, AuditQuery(before_id=newest.id))) == 2


async def test_service_list_filters(ctx: AppContext) -> None:
    ids = await seed_catalog(ctx)
    rows, total = await console.list_services(ctx, ServiceFilter())
    assert total == 3
    assert [r.id for r in rows] == [ids["service3"], ids["service2"], ids["service1"]]
    assert rows[-1].platform_name == "dummy-1"
    assert rows[-1].ipv4 == ["192.0.2.1"]
    assert [r.id for r in (await console.list_services(ctx, ServiceFilter(status="suspended")))[0]] == [
        ids["service2"]
    ]
    assert (await console.list_services(ctx, ServiceFilter(client_id="client-1")))[1] == 2
    assert [r.hostname for r in (await console.list_services(ctx, ServiceFilter(q="WEB1")))[0]] == [
        "web1.example.net"
    ]
    assert [r.id for r in (await console.list_services(ctx, ServiceFilter(q="192.0.2.2")))[0]] == [
        ids["service2"]
    ]
    assert (await console.list_services(ctx, ServiceFilter(platform_id=ids["platform"] + 1)))[1] == 0
    page, total = await console.list_services(ctx, ServiceFilter(limit=1, offset=1))
    assert total == 3
    assert [r.id for r in page] == [ids["service2"]]


async def test_service_detail_and_server_id_correction(ctx: AppContext) -> None:
    ids = await seed_catalog(ctx)
    detail = await console.service_detail(ctx, ids["service1"])
    assert detail.server_object["note"] == "from the platform"
    assert "power" in detail.supports  # the dummy driver's capabilities
    out = await console.set_server_external_id(ctx, ids["service1"], " 777 ", ACTOR)
    assert out.server is not None
    assert out.server.external_id == "777"
    with pytest.raises(Conflict):
        await console.set_server_external_id(ctx, ids["service2"], "777", ACTOR)
    with pytest.raises(Invalid):
        await console.set_server_external_id(ctx, ids["service2"], "has space", ACTOR)
    rows = await audit_actions(ctx, "service.server_id")
    assert [(r.details["from"], r.details["to"]) for r in rows] == [("101", "777")]
    detail = await console.service_detail(ctx, ids["service1"])
    assert [e.action for e in detail.audit] == ["service.server_id"]


async def test_validate_service_reports_each_problem(ctx: AppContext) -> None:
    ids = await seed_catalog(ctx)
    findings = await console.validate_service(ctx, ids["service1"])
    assert [f.level for f in findings] == ["ok", "ok", "ok"]
    assert "1 cores, 1024 MB memory, 20 GB disk" in findings[-1].message
    async with ctx.db.session() as session:
        product = await session.get(Product, ids["product"])
        assert product is not None
        product.plan = {"cpu_cores": 1}
        product.enabled = False
    findings = await console.validate_service(ctx, ids["service1"])
    assert [f.level for f in findings] == ["warning", "ok", "error"]
    assert "memory_mb" in findings[-1].message
