"""The server overview of a VirtFusion service reads like a customer expects: the power state from a
live read (not "unknown"), the OS by its name (the panel reports only the template number; sign-in
fetches the gallery that names it), the location group, and the host's maintenance as a banner."""

from __future__ import annotations

from portal_vf_support import VfPortal, vf

from vpsbridge.services import portal

__all__ = ["vf"]


async def test_overview_names_state_os_location_and_maintenance(vf: VfPortal) -> None:
    owned = await portal.owned_row(vf.app, "501", vf.service_id)
    server = next(iter(vf.sim.servers.values()))
    template = vf.sim.templates[int(server.os_template_id or 0)]
    # The overview never spends a call on the OS label: before sign-in fetched the gallery it shows
    # the panel's number, afterwards the name.
    calls = len(vf.sim.requests)
    assert (await portal.overview(vf.app, owned)).os_name == str(template.id)
    assert len(vf.sim.requests) == calls + 1  # the server itself, nothing else
    await portal.warm_gallery(vf.app, owned)
    await portal.forget_server(vf.app, owned)
    view = await portal.overview(vf.app, owned)
    hypervisor = vf.sim.hypervisors[server.hypervisor_id]
    assert view.state == "running"
    assert view.os_name
    assert view.os_name.startswith(template.name)
    assert view.location == vf.sim.groups[hypervisor.group_id].name
    assert view.maintenance is False

    hypervisor.maintenance = True
    await portal.forget_server(vf.app, owned)
    assert (await portal.overview(vf.app, owned)).maintenance is True
