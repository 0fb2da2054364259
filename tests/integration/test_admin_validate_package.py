""" "Validate config" on a VirtFusion service reads the plan's package from the platform: the package
sizes the server there, so the check reports its real sizes and refuses a package that was disabled
or deleted on the panel - rather than the placeholder sizes of the server specification."""

from __future__ import annotations

from admin_vf_support import VfConsole, vfc
from provisioning_support import ACTOR

from vpsbridge.services import admin_console, products
from vpsbridge.services.provisioning import create_service

__all__ = ["vfc"]


def _plan(findings: list[admin_console.Finding]) -> admin_console.Finding:
    return next(f for f in findings if "package" in f.message)


async def test_validate_reports_the_package_the_platform_holds(vfc: VfConsole) -> None:
    out = await create_service(
        vfc.app,
        {
            "client_id": "4711",
            "client": {"name": "Ada Lovelace", "email": "ada@example.net"},
            "product": vfc.small,
            "os_template": "1",
            "hostname": "web1.example.net",
        },
        ACTOR,
    )
    found = _plan(await admin_console.validate_service(vfc.app, out.id))
    assert (found.level, found.message) == (
        "ok",
        "plan resolves: package 1 (VPS 1G): 1 cores, 1024 MB memory, 25 GB disk",
    )

    vfc.sim.packages[1].enabled = False
    found = _plan(await admin_console.validate_service(vfc.app, out.id))
    assert (found.level, found.message) == ("error", "package 1 (VPS 1G) is disabled on the platform")

    await products.update_product(vfc.app, vfc.small, {"plan": {"package_id": 99}}, ACTOR)
    found = _plan(await admin_console.validate_service(vfc.app, out.id))
    assert (found.level, found.message) == ("error", "package 99 does not exist on the platform")
