"""The DNS demo contribution: a simulated HestiaCP panel holding the demo's reverse and forward zones.

PowerDNS is not assumed on a demo machine, so the demo's DNS provider is the HestiaCP simulator served
on a loopback port; vpsbridge talks HTTP to it exactly as to a real panel. It holds the reverse zones
of every IP pool in the catalog and of the ranges simulated platforms hand out themselves
(``DemoContext.dns_networks``), as :func:`~vpsbridge.core.ipam.reverse_zone_hint` names them, and a
forward zone that the demo's products and pools name for their servers' A/AAAA records. So deploying
a demo server shows the whole "Set DNS records" job (forward records, forward-confirmed PTRs, a
summary), and the sample client can set reverse DNS in the portal on either platform.

It runs after the platform contributions (``order = 40``) because it serves the zones of their pools.
Seeding is idempotent: the provider row is created once and only its URL follows the port. The
simulator keeps its records in memory, so zones are re-created on every run and the catalog's zone
list is refreshed once the simulator is serving (``start``).
"""

from __future__ import annotations

from collections.abc import Iterable

from vpsbridge.core.ipam import reverse_zone_hint
from vpsbridge.services.demo import DEMO_POOLS, DemoContext
from vpsbridge.sim.hestiacp import HestiaState, create_app

PROVIDER = "demo-hestiacp"
FORWARD_ZONE = "demo.example.net"
PORT = 8794
ACCESS_KEY = "SIMACCESSKEY000000001"
SECRET_KEY = "sim-secret-key-0123456789abcdef01234567"  # noqa: S105 - the simulator's built-in demo key


def demo_zones(networks: Iterable[str] = ()) -> list[str]:
    """The forward zone and one reverse zone per network (aligned prefixes only), without repeats.

    Without arguments: the zones of the foundation's pools, which exist in every demo.
    """
    zones = [FORWARD_ZONE]
    for network in (*(str(p["network"]) for p in DEMO_POOLS), *networks):
        hint = reverse_zone_hint(network)
        if hint.endswith(".arpa.") and hint.rstrip(".") not in zones:
            zones.append(hint.rstrip("."))
    return zones


class DnsDemo:
    name = "dns"
    order = 40

    def __init__(self) -> None:
        self.state: HestiaState | None = None

    async def seed(self, ctx: DemoContext) -> None:
        from vpsbridge.services import dns_providers, pools, products
        from vpsbridge.services.audit import Actor
        from vpsbridge.services.errors import NotFound

        actor = Actor.system("demo")
        catalog_pools = await pools.list_pools(ctx.app)
        zones = demo_zones([*(p.network for p in catalog_pools), *ctx.dns_networks])
        state = HestiaState(keys={ACCESS_KEY: (SECRET_KEY, "admin")})
        for zone in zones:
            state.run("admin", "v-add-dns-domain", ["admin", zone, "192.0.2.53"])
        self.state = state
        url = ctx.serve_asgi("hestiacp-sim", create_app(state), port=PORT)
        try:
            existing = await dns_providers.get_dns_provider(ctx.app, PROVIDER)
        except NotFound:
            await dns_providers.create_dns_provider(
                ctx.app,
                {
                    "name": PROVIDER,
                    "type": "hestiacp",
                    "url": url,
                    "credentials": {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY},
                    "settings": {"user": "admin", "default_ttl": 3600},
                },
                actor,
            )
        else:
            if existing.url != url:
                await dns_providers.update_dns_provider(ctx.app, PROVIDER, {"url": url}, actor)
        # Pools and products name the forward zone, unless the operator already chose another one
        # (a product's zone wins over its pools'; platforms that assign addresses have no pool).
        for row in catalog_pools:
            if not row.settings.get("dns_zone"):
                settings = {**row.settings, "dns_zone": FORWARD_ZONE + "."}
                await pools.update_pool(ctx.app, row.id, {"settings": settings}, actor)
        for product in await products.list_products(ctx.app):
            if not product.dns_zone:
                await products.update_product(ctx.app, product.id, {"dns_zone": FORWARD_ZONE}, actor)
        ctx.add_link("HestiaCP simulator (DNS API)", f"{url}/api/")
        ctx.add_line(
            f"DNS: provider {PROVIDER} (HestiaCP simulator) holds {', '.join(zones)}; "
            f"try `vpsbridge dns zones {PROVIDER}` and `vpsbridge dns ptr-status <server id>`"
        )

    async def start(self, ctx: DemoContext) -> None:
        from vpsbridge.services.dns import sync_zones
        from vpsbridge.services.errors import ServiceError

        try:
            await sync_zones(ctx.app, PROVIDER)
        except ServiceError as exc:  # the demo still runs; the panel shows the problem
            ctx.add_line(f"DNS: zone discovery failed: {exc}")


#: The object the ``dns`` entry point names.
contribution = DnsDemo()
