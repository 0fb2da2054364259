"""The VirtFusion demo contribution: a simulated panel on loopback, a platform row and sample products.

The simulator is served on its own loopback port (its URL is stored in the ``demo-virtfusion``
platform, so the driver talks HTTP to it exactly as to a real panel). Seeding is idempotent: the
platform is created once and only its URL is refreshed when the port changed between runs;
products are created when missing and otherwise left as the operator edited them.

The sample client gets one service on the cheapest product (see :mod:`vpsbridge.services.demo_sample`),
and the servers' consoles show the demo's VNC screen when Xvnc is installed (``start``).
"""

from __future__ import annotations

from typing import Any

from vpsbridge.services.demo import DemoContext
from vpsbridge.services.demo_sample import SampleService
from vpsbridge.services.dns.demo import FORWARD_ZONE
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
#: Where the simulator's hypervisors take their IPv4 addresses from (198.18.<hypervisor id>.0/24).
ADDRESS_NETWORK = "198.18.0.0/16"
#: The sample client's service: its billing service id, product and OS template (Debian 12).
SAMPLE_BILLING_ID = "demo-sample-vf"
SAMPLE_PRODUCT = "demo-vf-1g-lon"
SAMPLE_OS_TEMPLATE = "1"

#: Simulated tasks (builds, clones, power) take a quarter of their usual time, so the sample
#: services are active a few seconds after the banner while each step still shows in the job log.
TIME_SCALE = 0.25


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
        self.state = VirtFusionState(tokens={TOKEN: None}, time_scale=TIME_SCALE).seed_demo()
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
        ctx.add_dns_network(ADDRESS_NETWORK)
        ctx.add_sample_service(
            SampleService(
                billing_service_id=SAMPLE_BILLING_ID,
                product=SAMPLE_PRODUCT,
                platform=PLATFORM,
                hostname=f"ada-vf.{FORWARD_ZONE}",
                label="VirtFusion",
                server_exists=self.holds,
                os_template=SAMPLE_OS_TEMPLATE,
            )
        )

    def holds(self, external_id: str) -> bool:
        """Whether the running simulator has this server (it forgets everything between runs)."""
        return self.state is not None and external_id.isdigit() and int(external_id) in self.state.servers

    async def start(self, ctx: DemoContext) -> None:
        backend = await ctx.console_display()
        if backend is not None and self.state is not None:
            self.state.console_backend = backend


#: The object the ``virtfusion`` entry point names.
contribution = VirtFusionDemo()
