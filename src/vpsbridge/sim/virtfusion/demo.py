"""The VirtFusion demo contribution: a simulated panel on loopback, a platform row and sample products.

The simulator is served on its own loopback port (its URL is stored in the ``demo-virtfusion``
platform, so the driver talks HTTP to it exactly as to a real panel). Seeding is idempotent: the
platform is created once and only its URL is refreshed when the port changed between runs;
products are created when missing and otherwise left as the operator edited them.
"""

from __future__ import annotations

from typing import Any

from vpsbridge.services.demo import DemoContext
from vpsbridge.sim.virtfusion.app import create_app
from vpsbridge.sim.virtfusion.state import VirtFusionState

PLATFORM = "demo-virtfusion"
TOKEN = "demo-virtfusion-token"  # noqa: S105 - the simulator's own demo token, not a real credential
PORT = 8791

#: (billing product id, name, package id, hypervisor group id).
PRODUCTS: tuple[tuple[str, str, int, int], ...] = (
    ("demo-vf-1g-lon", "VirtFusion 1G London", 1, 1),
    ("demo-vf-2g-fra", "VirtFusion 2G Frankfurt", 2, 2),
    ("demo-vf-4g-lon", "VirtFusion 4G London", 3, 1),
)


class VirtFusionDemo:
    name = "virtfusion"
    order = 20

    def __init__(self) -> None:
        self.state: VirtFusionState | None = None

    async def seed(self, ctx: DemoContext) -> None:
        from vpsbridge.services import platforms, products
        from vpsbridge.services.audit import Actor
        from vpsbridge.services.errors import NotFound

        actor = Actor.system("demo")
        self.state = VirtFusionState(tokens={TOKEN: None}).seed_demo()
        url = ctx.serve_asgi("virtfusion-sim", create_app(self.state), port=PORT)
        settings: dict[str, Any] = {"hypervisor_group_id": 1, "package_id": 1, "panel_url": url}
        try:
            existing = await platforms.get_platform(ctx.app, PLATFORM)
        except NotFound:
            await platforms.create_platform(
                ctx.app,
                {
                    "name": PLATFORM,
                    "type": "virtfusion",
                    "url": url,
                    "credentials": {"token": TOKEN},
                    "settings": settings,
                },
                actor,
            )
        else:
            if existing.url != url or existing.settings.get("panel_url") != url:
                await platforms.update_platform(
                    ctx.app,
                    PLATFORM,
                    {"url": url, "settings": {**existing.settings, "panel_url": url}},
                    actor,
                )
        for billing_id, name, package_id, group_id in PRODUCTS:
            if await products.get_product_by_billing_id(ctx.app, billing_id) is None:
                await products.create_product(
                    ctx.app,
                    {
                        "billing_product_id": billing_id,
                        "name": name,
                        "platform": PLATFORM,
                        "placement": {"hypervisor_group_id": group_id},
                        "plan": {"package_id": package_id, "default_ipv4": 1},
                        "stock_control": True,
                    },
                    actor,
                )
        ctx.add_link("VirtFusion simulator (API)", f"{url}/api/v1/connect")
        ctx.add_line(f"VirtFusion simulator: token {TOKEN}; knobs at {url}/_sim/state")


#: The object the ``virtfusion`` entry point names.
contribution = VirtFusionDemo()
