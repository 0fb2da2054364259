"""The Proxmox VE demo contribution: a simulated 3-node cluster on loopback, a platform and a product.

The cluster has nodes ``pve1..pve3`` with local LVM-thin storage each plus a shared Ceph pool, and
cloud-init templates for Debian 12, Ubuntu 24.04 and AlmaLinux 9 on ``pve1``. The simulator is
served on its own loopback port and the ``demo-proxmox`` platform points at it, so the driver talks
HTTP exactly as to a real cluster. Seeding is idempotent: the platform is created once (only its URL
and token are refreshed), the product and the IPv4 pool (RFC 5737 TEST-NET-2, because Proxmox leaves
addressing to vpsbridge) are created when missing.

The sample client gets one service on the product (see :mod:`vpsbridge.services.demo_sample`), and the
VMs' consoles show the demo's VNC screen when Xvnc is installed (``start``).
"""

from __future__ import annotations

from typing import Any

from vpsbridge.services.demo import DemoContext
from vpsbridge.services.demo_sample import SampleService
from vpsbridge.services.dns.demo import FORWARD_ZONE
from vpsbridge.sim.proxmox.app import create_app
from vpsbridge.sim.proxmox.cluster import TEMPLATES, standard_cluster
from vpsbridge.sim.proxmox.state import ProxmoxState

PLATFORM = "demo-proxmox"
PORT = 8793
DEMO_TOKEN_SECRET = "d3m0-0000-4000-8000-pr0xm0x00000"  # noqa: S105 - the simulator's demo token

#: (billing product id, name, plan).
PRODUCTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "demo-pve-2g",
        "Proxmox KVM 2G",
        {
            "cpu_cores": 2,
            "memory_mb": 2048,
            "disk_gb": 40,
            "template": TEMPLATES[0][0],
            "storage": "local-lvm",
            "bridge": "vmbr0",
            "bandwidth_mbps": 1000,
        },
    ),
)


#: The addresses vpsbridge hands to the cluster's VMs.
POOL: dict[str, Any] = {
    "name": "demo-pve-ipv4",
    "network": "198.51.100.0/24",
    "range_start": "198.51.100.10",
    "range_end": "198.51.100.250",
    "gateway": "198.51.100.1",
    "dns_servers": ["198.51.100.53"],
}
#: The sample client's service.
SAMPLE_BILLING_ID = "demo-sample-pve"

#: Simulated tasks (builds, clones, power) take a quarter of their usual time, so the sample
#: services are active a few seconds after the banner while each step still shows in the job log.
TIME_SCALE = 0.25


class ProxmoxDemo:
    name = "proxmox"
    order = 30

    def __init__(self) -> None:
        self.state: ProxmoxState | None = None

    async def seed(self, ctx: DemoContext) -> None:
        from vpsbridge.services import platforms, pools, products
        from vpsbridge.services.audit import Actor
        from vpsbridge.services.errors import NotFound

        actor = Actor.system("demo")
        self.state, info = standard_cluster(
            ProxmoxState(time_scale=TIME_SCALE), token_secret=DEMO_TOKEN_SECRET
        )
        url = ctx.serve_asgi("proxmox-sim", create_app(self.state), port=PORT)
        credentials = {
            "token_id": info.token_id,
            "token_secret": info.token_secret,
            "console_user": info.console_user,
            "console_password": info.console_password,
        }
        settings: dict[str, Any] = {
            "storage": "local-lvm",
            "cpu_overcommit": 4,
            "ram_overcommit": 1,
        }
        try:
            existing = await platforms.get_platform(ctx.app, PLATFORM)
        except NotFound:
            await platforms.create_platform(
                ctx.app,
                {
                    "name": PLATFORM,
                    "type": "proxmox",
                    "url": url,
                    "credentials": credentials,
                    "settings": settings,
                },
                actor,
            )
        else:
            if existing.url != url:
                await platforms.update_platform(ctx.app, PLATFORM, {"url": url}, actor)
            await platforms.update_platform(ctx.app, PLATFORM, {"credentials": credentials}, actor)
        for billing_id, name, plan in PRODUCTS:
            if await products.get_product_by_billing_id(ctx.app, billing_id) is None:
                await products.create_product(
                    ctx.app,
                    {
                        "billing_product_id": billing_id,
                        "name": name,
                        "platform": PLATFORM,
                        "placement": {"nodes": list(info.nodes), "storage": "local-lvm"},
                        "plan": plan,
                        "stock_control": True,
                    },
                    actor,
                )
        try:
            await pools.get_pool(ctx.app, POOL["name"])
        except NotFound:
            await pools.create_pool(ctx.app, {**POOL, "platform": PLATFORM}, actor)
        ctx.add_link("Proxmox VE simulator (API)", f"{url}/api2/json/version")
        ctx.add_line(
            f"Proxmox simulator: nodes {', '.join(info.nodes)}; templates "
            + ", ".join(f"{vmid} {name}" for vmid, name, _ in TEMPLATES)
            + f"; token {info.token_id}"
        )
        ctx.add_sample_service(
            SampleService(
                billing_service_id=SAMPLE_BILLING_ID,
                product=PRODUCTS[0][0],
                platform=PLATFORM,
                hostname=f"ada-pve.{FORWARD_ZONE}",
                label="Proxmox",
                server_exists=self.holds,
            )
        )

    def holds(self, external_id: str) -> bool:
        """Whether the running simulator has this VM (it forgets everything between runs)."""
        return self.state is not None and external_id.isdigit() and int(external_id) in self.state.vms

    async def start(self, ctx: DemoContext) -> None:
        backend = await ctx.console_display()
        if backend is not None and self.state is not None:
            self.state.console_backend = backend


#: The object the ``proxmox`` entry point names.
contribution = ProxmoxDemo()
