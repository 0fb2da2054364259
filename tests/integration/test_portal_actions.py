"""Portal actions that hand over to the provisioning service or the platform, through the real web app.

A rebuild from the portal must become a durable job (so a reinstall survives a restart of the web
process and shows up in the operator console's job list) with exactly one audit row naming the client.
On Proxmox the same portal rebuild queues the platform's rebuild workflow.
Panel sign-in (VirtFusion simulator) redirects only to the configured panel host, is rate limited,
needs the CSRF token, and is absent for platforms without a panel.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import portal_support
import portal_vf_support
import proxmox_flow_support
import pytest
from portal_support import ORIGIN, PortalWorld, app_client, sign_in
from portal_vf_support import PANEL, VfPortal, vf_client, vf_sign_in
from proxmox_flow_support import World as ProxmoxWorld
from sqlalchemy import select

from vpsbridge.platforms.virtfusion.client import VirtFusionClient
from vpsbridge.services import portal
from vpsbridge.services.provisioning.proxmox import REBUILD
from vpsbridge.store.models import AuditLog, Job

world = portal_support.world
pworld = portal_support.pworld
vf = portal_vf_support.vf


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


# --- panel sign-in (VirtFusion simulator) -------------------------------------------------------------


async def test_panel_login_redirects_to_the_panel_once_per_five_seconds(vf: VfPortal) -> None:
    async with vf_client(vf) as client:
        token, page = await vf_sign_in(client, vf)
        url = f"/portal/s/{vf.service_id}/panel-login"
        assert f'action="{url}"' in page.text
        # the overview's form-action names the panel, so the browser follows the redirect
        csp = page.headers["content-security-policy"]
        assert f"form-action 'self' {PANEL};" in csp
        headers = {"Origin": ORIGIN, "X-CSRF-Token": token}
        first = await client.post(url, headers=headers)
        assert first.status_code == 303, first.text[:300]
        target = urlsplit(first.headers["location"])
        assert f"{target.scheme}://{target.netloc}" == PANEL
        assert target.path.startswith("/token_authenticate")
        assert first.headers["cache-control"] == "no-store"
        again = await client.post(url, headers=headers)
        assert again.status_code == 429
        assert 1 <= int(again.headers["retry-after"]) <= 5
        assert (await client.post(url, headers={"Origin": ORIGIN})).status_code == 403
    logins = [r for r in vf.sim.requests if r[0] == "POST" and "serverAuthenticationTokens" in r[1]]
    assert len(logins) == 1
    async with vf.app.db.session() as s:
        rows = (await s.scalars(select(AuditLog).where(AuditLog.action == "service.panel_login"))).all()
    assert [(r.actor_type, r.actor_id, r.object_id) for r in rows] == [("client", "501", str(vf.service_id))]


async def test_panel_login_never_redirects_to_another_host(
    vf: VfPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hostile(self: VirtFusionClient, ext_relation_id: int, server_id: int) -> dict[str, Any]:
        return {"authentication": {"endpoint_complete": "https://evil.example/token_authenticate/?1=a&2=b"}}

    monkeypatch.setattr(VirtFusionClient, "server_login_tokens", hostile)
    async with vf_client(vf) as client:
        token, _ = await vf_sign_in(client, vf)
        answer = await client.post(
            f"/portal/s/{vf.service_id}/panel-login", headers={"Origin": ORIGIN, "X-CSRF-Token": token}
        )
    assert answer.status_code == 502
    assert "location" not in answer.headers
    assert "evil.example" not in answer.text


async def test_panel_login_is_hidden_for_platforms_without_a_panel(pworld: PortalWorld) -> None:
    async with app_client(pworld) as client:
        token = await sign_in(client, pworld, pworld.mine)
        page = await client.get(f"/portal/s/{pworld.mine}")
        assert "/panel-login" not in page.text
        assert "form-action 'self';" in page.headers["content-security-policy"]
        answer = await client.post(
            f"/portal/s/{pworld.mine}/panel-login", headers={"Origin": ORIGIN, "X-CSRF-Token": token}
        )
        assert answer.status_code == 404


# --- rebuild on Proxmox (its own workflow) -----------------------------------------------------------

proxmox_world = proxmox_flow_support.world


async def test_rebuild_on_proxmox_queues_its_workflow(proxmox_world: ProxmoxWorld) -> None:
    created = await proxmox_world.create("pm1")
    await proxmox_world.run()
    owned = await portal.owned_service(proxmox_world.app, "c1", created.id)
    gallery = await portal.os_gallery(proxmox_world.app, owned)
    template = next(entry.id for entries in gallery.values() for entry in entries)
    job_id = await portal.rebuild(
        proxmox_world.app, owned, template, [], portal.client_actor(owned, "192.0.2.9")
    )
    assert job_id is not None
    [job] = await proxmox_world.jobs(REBUILD)
    assert job.id == job_id
    async with proxmox_world.app.db.session() as s:
        rows = (await s.scalars(select(AuditLog).where(AuditLog.action == "service.rebuild"))).all()
    assert [(r.actor_type, r.actor_id, r.ip) for r in rows] == [("client", "c1", "192.0.2.9")]
    await proxmox_world.run()
    [done] = await proxmox_world.jobs(REBUILD)
    assert done.status == "succeeded", done.last_error
    assert (await proxmox_world.service(created.id)).status == "active"
