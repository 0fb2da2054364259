"""Portal actions that hand over to the provisioning service, through the real web app.

A rebuild from the portal must become a durable job (so a reinstall survives a restart of the web
process and shows up in the operator console's job list) with exactly one audit row naming the client.
"""

from __future__ import annotations

import portal_support
from portal_support import ORIGIN, PortalWorld, app_client, sign_in
from sqlalchemy import select

from vpsbridge.store.models import AuditLog, Job

world = portal_support.world
pworld = portal_support.pworld


async def test_rebuild_queues_a_job_and_records_the_client(pworld: PortalWorld) -> None:
    async with pworld.ctx.db.session() as s:
        jobs_before = {j.id for j in (await s.scalars(select(Job))).all()}
    async with app_client(pworld) as client:
        token = await sign_in(client, pworld, pworld.mine)
        answer = await client.post(
            f"/portal/s/{pworld.mine}/rebuild",
            data={"os": "debian-12", "confirm": "7001.example.net"},
            headers={"Origin": ORIGIN, "X-CSRF-Token": token},
        )
        assert answer.status_code == 303, answer.text[:300]
        assert answer.headers["location"].endswith("done=rebuild")
    async with pworld.ctx.db.session() as s:
        new_jobs = [j for j in (await s.scalars(select(Job))).all() if j.id not in jobs_before]
        rows = (
            await s.scalars(
                select(AuditLog).where(
                    AuditLog.action == "service.rebuild", AuditLog.object_id == str(pworld.mine)
                )
            )
        ).all()
    assert [j.payload.get("service_id") for j in new_jobs] == [pworld.mine]
    assert [(r.actor_type, r.actor_id) for r in rows] == [("client", "501")]
    assert rows[0].details["os"] == "debian-12"
    await pworld.world.drain()
    async with pworld.ctx.db.session() as s:
        job = await s.get(Job, new_jobs[0].id)
        assert job is not None
        assert job.status == "succeeded", job.last_error


async def test_rebuild_refuses_a_template_the_product_does_not_offer(pworld: PortalWorld) -> None:
    async with app_client(pworld) as client:
        token = await sign_in(client, pworld, pworld.mine)
        answer = await client.post(
            f"/portal/s/{pworld.mine}/rebuild",
            data={"os": "not-an-os", "confirm": "7001.example.net"},
            headers={"Origin": ORIGIN, "X-CSRF-Token": token, "Accept": "application/json"},
        )
        assert answer.status_code == 422
    async with pworld.ctx.db.session() as s:
        rows = (await s.scalars(select(AuditLog).where(AuditLog.action == "service.rebuild"))).all()
    assert rows == []
