"""A console world on simulators: a VirtFusion platform (the in-process simulator) with a product
that has stock and one that has none, and a HestiaCP DNS provider (its simulator) holding the
forward zone of the product and the reverse zone of the simulator's addresses - so a service
created from the console deploys, gets its A record and forward-confirmed PTR, and counts in stock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from provisioning_support import ACTOR, fast_settings
from virtfusion_support import PANEL, TimedASGITransport, add_vf_platform, make_sim

from vpsbridge.services import dns_providers, products
from vpsbridge.services.context import AppContext
from vpsbridge.services.dns import sync_zones
from vpsbridge.services.dns.catalog import EXTRAS_TRANSPORTS as DNS_TRANSPORTS
from vpsbridge.services.provisioning.drivers import EXTRAS_TRANSPORTS
from vpsbridge.sim.hestiacp import HestiaState
from vpsbridge.sim.hestiacp import create_app as hestia_app
from vpsbridge.sim.virtfusion import VirtFusionState

FORWARD_ZONE = "example.net"
#: The VirtFusion simulator gives every hypervisor a /24 of 198.18.0.0/15; one zone holds them all.
REVERSE_ZONE = "18.198.in-addr.arpa"
ACCESS_KEY = "SIMACCESSKEY000000001"
SECRET_KEY = "sim-secret-key-0123456789abcdef01234567"


@dataclass
class VfConsole:
    app: AppContext
    sim: VirtFusionState
    dns: HestiaState
    #: VPS 1G in group 1 (London): in stock.
    small: int
    #: VPS 4G in group 2 (Frankfurt), whose hypervisors have no memory left: out of stock.
    full: int

    def ptr(self, ip: str) -> list[str]:
        """The PTR values the DNS simulator holds for ``ip``."""
        owner = ".".join(reversed(ip.split(".")[2:]))
        records = self.dns.domains["admin"][REVERSE_ZONE].records.values()
        return [r["VALUE"] for r in records if r["TYPE"] == "PTR" and r["RECORD"] == owner]

    def set_ptr(self, ip: str, value: str) -> None:
        """Change a PTR behind vpsbridge's back, as someone editing the zone by hand would."""
        owner = ".".join(reversed(ip.split(".")[2:]))
        domain = self.dns.domains["admin"][REVERSE_ZONE]
        rid = next(i for i, r in domain.records.items() if r["TYPE"] == "PTR" and r["RECORD"] == owner)
        self.dns.run("admin", "v-change-dns-record", ["admin", REVERSE_ZONE, str(rid), owner, "PTR", value])


@pytest.fixture
async def vfc(db_url: str, tmp_path: Path) -> AsyncIterator[VfConsole]:
    sim, asgi = make_sim()
    for hv in sim.hypervisors.values():
        if hv.group_id == 2:
            hv.memory_mb = 2048  # less than one VPS 4G: the group is full
    dns = HestiaState(keys={ACCESS_KEY: (SECRET_KEY, "admin")})
    for zone in (FORWARD_ZONE, REVERSE_ZONE):
        dns.run("admin", "v-add-dns-domain", ["admin", zone, "192.0.2.53"])
    app = await AppContext.create(fast_settings(db_url, tmp_path))
    app.extras[EXTRAS_TRANSPORTS] = {PANEL: TimedASGITransport(asgi, read_timeout=2.0)}
    app.extras[DNS_TRANSPORTS] = {"hestiacp": httpx2.ASGITransport(app=hestia_app(dns))}
    try:
        await add_vf_platform(app, ACTOR)
        small = await products.create_product(
            app,
            {
                "name": "VPS 1G London",
                "platform": "vf",
                "placement": {"hypervisor_group_id": 1},
                "plan": {"package_id": 1},
                "dns_zone": FORWARD_ZONE,
                "stock_control": True,
            },
            ACTOR,
        )
        full = await products.create_product(
            app,
            {
                "name": "VPS 4G Frankfurt",
                "platform": "vf",
                "placement": {"hypervisor_group_id": 2},
                "plan": {"package_id": 3},
                "dns_zone": FORWARD_ZONE,
                "stock_control": True,
            },
            ACTOR,
        )
        await dns_providers.create_dns_provider(
            app,
            {
                "name": "hestia",
                "type": "hestiacp",
                "url": "https://dns.example.test:8083",
                "credentials": {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY},
                "settings": {"user": "admin", "default_ttl": 3600, "zone_cache_seconds": 0},
            },
            ACTOR,
        )
        await sync_zones(app, "hestia")
        yield VfConsole(app=app, sim=sim, dns=dns, small=small.id, full=full.id)
    finally:
        await app.close()


__all__ = ["FORWARD_ZONE", "REVERSE_ZONE", "VfConsole", "vfc"]
