"""The service lifecycle against the VirtFusion simulator (SQLite and PostgreSQL): the panel's own root
password captured from the build answer, IPv6 that shows up after the build, package-change warnings
(``info[]``), locked servers (423), 5xx on create (unknown, never duplicated), "server not found"."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from provisioning_support import ACTOR, fast_settings
from virtfusion_support import PANEL, TimedASGITransport, add_vf_platform, make_sim

from vpsbridge.jobs.worker import Worker
from vpsbridge.services import products
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import Conflict, UpstreamError
from vpsbridge.services.provisioning import (
    by_billing,
    change_package,
    create_service,
    get_service,
    resolve_unknown_create,
    service_credentials,
    suspend_service,
    terminate_service,
)
from vpsbridge.services.provisioning.drivers import EXTRAS_TRANSPORTS
from vpsbridge.sim.virtfusion import Fault, VirtFusionState


@dataclass
class Panel:
    app: AppContext
    sim: VirtFusionState
    transport: TimedASGITransport

    async def drain(self) -> None:
        await Worker(self.app, concurrency=4, periodic=False, wakeup=False).run_until_idle(timeout=30)

    def request(self, billing_id: str, product: str = "vf-1g") -> dict[str, object]:
        return {
            "billing_service_id": billing_id,
            "client_id": "501",
            "client": {"name": "Ada Lovelace", "email": f"ada{uuid.uuid4().hex[:4]}@example.net"},
            "product": product,
            "os_template": "1",
            "hostname": f"vf{billing_id}.example.net",
        }


@pytest.fixture
async def panel(db_url: str, tmp_path: Path) -> AsyncIterator[Panel]:
    sim, asgi = make_sim()
    transport = TimedASGITransport(asgi, read_timeout=1.0)
    app = await AppContext.create(fast_settings(db_url, tmp_path))
    app.extras[EXTRAS_TRANSPORTS] = {PANEL: transport}
    await add_vf_platform(app, ACTOR)
    for name, package in (("vf-1g", 1), ("vf-2g", 2)):
        await products.create_product(
            app,
            {
                "name": name,
                "platform": "vf",
                "placement": {"hypervisor_group_id": 1},
                "plan": {"package_id": package},
            },
            ACTOR,
        )
    try:
        yield Panel(app, sim, transport)
    finally:
        await app.close()


async def test_build_captures_the_panels_password_and_late_ipv6(panel: Panel) -> None:
    out = await create_service(panel.app, panel.request("6001"), ACTOR)
    assert out.status == "provisioning"
    assert out.server is not None
    assert out.server.ipv4, "the panel reserved the addresses at create"
    upstream = panel.sim.servers[int(out.server.external_id or 0)]
    assert panel.sim.users[upstream.owner_id].ext_relation_id == 501
    await panel.drain()
    done = await get_service(panel.app, out.id)
    assert done.status == "active"
    assert done.server is not None
    assert done.server.ipv6, "IPv6 appeared after the build and was waited for"
    assert done.server.state == "running", "the power state is read live, not left unknown"
    creds = await service_credentials(panel.app, out.id)
    assert creds.password == upstream.password
    assert upstream.state == "complete"
    assert upstream.hostname == "vf6001.example.net"
    builds = [r for r in panel.sim.requests if r[0] == "POST" and r[1].endswith("/build")]
    assert len(builds) == 1


async def test_package_change_surfaces_the_panels_info(panel: Panel) -> None:
    out = await create_service(panel.app, panel.request("6002", product="vf-2g"), ACTOR)
    await panel.drain()
    changed = await change_package(panel.app, out.id, {"product": "vf-1g"}, ACTOR)
    assert any("primary disk not updated" in w for w in changed.warnings)
    assert changed.service.product_name == "vf-1g"
    assert changed.service.warnings == changed.warnings
    await panel.drain()
    upstream = panel.sim.servers[int(out.server.external_id or 0)]  # type: ignore[union-attr]
    assert upstream.package_id == 1


async def test_5xx_on_create_is_unknown_and_never_duplicated(panel: Panel) -> None:
    panel.sim.faults.append(Fault(kind="status", method="POST", path="/servers", status=500))
    with pytest.raises(UpstreamError, match="unknown"):
        await create_service(panel.app, panel.request("6003"), ACTOR)
    assert (await get_service(panel.app, by_billing("6003"))).status == "unknown"
    with pytest.raises(Conflict, match="resolve"):
        await create_service(panel.app, panel.request("6003"), ACTOR)
    assert panel.sim.servers == {}
    # The operator checked the panel: nothing was created, so a new create may go ahead.
    await resolve_unknown_create(panel.app, by_billing("6003"), ACTOR, external_id=None)
    again = await create_service(panel.app, panel.request("6003"), ACTOR)
    assert again.status == "provisioning"
    assert len(panel.sim.servers) == 1


async def test_locked_server_and_vanished_server(panel: Panel) -> None:
    out = await create_service(panel.app, panel.request("6004"), ACTOR)
    await panel.drain()
    sid = int(out.server.external_id or 0)  # type: ignore[union-attr]
    panel.sim.faults.append(Fault(kind="status", method="POST", path=f"/servers/{sid}/suspend", status=423))
    with pytest.raises(Conflict, match="busy"):
        await suspend_service(panel.app, out.id, ACTOR)
    assert (await get_service(panel.app, out.id)).status == "active"
    del panel.sim.servers[sid]  # deleted in the panel behind our back
    await terminate_service(panel.app, out.id, ACTOR, delay_seconds=0)
    await panel.drain()
    assert (await get_service(panel.app, out.id)).status == "terminated"
