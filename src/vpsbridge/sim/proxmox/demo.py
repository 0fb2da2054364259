"""The Proxmox VE demo contribution: a simulated 3-node cluster on loopback, a platform and a product.

The cluster has nodes ``pve1..pve3`` with local LVM-thin storage each plus a shared Ceph pool, and
cloud-init templates for Debian 12, Ubuntu 24.04 and AlmaLinux 9 on ``pve1``. The simulator is
served on its own loopback port and the ``demo-proxmox`` platform points at it, so the driver talks
HTTP exactly as to a real cluster. Seeding is idempotent: the platform is created once (only its URL
and token are refreshed), the product is created when missing.
"""

from __future__ import annotations

from typing import Any

from vpsbridge.services.demo import DemoContext
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


class ProxmoxDemo:
    name = "proxmox"
    order = 30

    def __init__(self) -> None:
        self.state: ProxmoxState | None = None

    async def seed(self, ctx: DemoContext) -> None:
        from vpsbridge.services import platforms, products
        from vpsbridge.services.audit import Actor
        from vpsbridge.services.errors import NotFound

        actor = Actor.system("demo")
        self.state, info = standard_cluster(ProxmoxState(), token_secret=DEMO_TOKEN_SECRET)
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
                    },
                    actor,
                )
        ctx.add_link("Proxmox VE simulator (API)", f"{url}/api2/json/version")
        ctx.add_line(
            f"Proxmox simulator: nodes {', '.join(info.nodes)}; templates "
            + ", ".join(f"{vmid} {name}" for vmid, name, _ in TEMPLATES)
            + f"; token {info.token_id}"
        )


#: The object the ``proxmox`` entry point names.
contribution = ProxmoxDemo()
