"""Proxmox stock on the shared stock math: RAM/CPU with overcommit, target storage, offline nodes,
pool addresses, and an unreachable cluster leaving the stock unknown (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxmox_flow_support import URL, World, build_world

from vpsbridge.platforms.proxmox import ProxmoxPlatform
from vpsbridge.services.provisioning.drivers import EXTRAS_TRANSPORTS
from vpsbridge.services.stock import NodeCapacityStock
from vpsbridge.services.stock.outcome import ProductInputs
from vpsbridge.services.stock.sources import PlatformInfo, source_for


async def stock(
    w: World, plan: dict[str, Any], placement: dict[str, Any] | None = None, *, buffer: float = 0.0
) -> Any:
    info = PlatformInfo(
        id=w.platform_id,
        name="pve",
        type="proxmox",
        url=URL,
        credentials={},
        verify_tls=True,
        ca_bundle=None,
        settings={"storage": "local-lvm", "ram_overcommit": 1, "cpu_overcommit": 4},
    )
    sim_creds = {"token_id": "vpsbridge@pve!deploy", "token_secret": "11111111-2222-3333-4444-555555555555"}
    driver = ProxmoxPlatform(
        url=URL,
        credentials=sim_creds,
        transport=w.app.extras[EXTRAS_TRANSPORTS][URL],
        settings={"retry_wait": 0.01, "read_timeout": 1, "max_retries": 0},
    )
    source = NodeCapacityStock(w.app, info, driver)
    product = ProductInputs(
        id=w.product_id,
        name="p",
        billing_product_id=None,
        platform_id=w.platform_id,
        placement={"storage": "local-lvm", **(placement or {})},
        plan=plan,
        buffer_pct=buffer,
    )
    try:
        return await source.quantity(product)
    finally:
        await driver.aclose()


async def test_quantity_from_ram_storage_and_addresses(db_url: str, tmp_path: Path) -> None:
    w = await build_world(db_url, tmp_path, pool_specs=[{"name": "v4", "network": "192.0.2.0/26"}])
    try:
        assert source_for("proxmox") is NodeCapacityStock
        # Nodes: pve1 64 GB, pve2/pve3 128 GB RAM; local-lvm 1500/2000/2500 GB; templates use a little.
        out = await stock(w, {"cpu_cores": 1, "memory_mb": 16384, "disk_gb": 10})
        assert out.status == "ok"
        assert out.quantity == 4 + 8 + 8  # RAM binds: 64/16 + 128/16 + 128/16
        big_disk = await stock(w, {"cpu_cores": 1, "memory_mb": 1024, "disk_gb": 900})
        assert big_disk.quantity == 1 + 2 + 2  # storage binds per node
        few_ips = await stock(w, {"cpu_cores": 1, "memory_mb": 512, "disk_gb": 1})
        assert few_ips.quantity == 62  # the /26 pool binds (62 usable hosts)
        assert few_ips.breakdown["groups"][0]["binding"] == "ipv4"
        cpu = await stock(w, {"cpu_cores": 32, "memory_mb": 512, "disk_gb": 1}, {"cpu_overcommit": 1})
        assert cpu.quantity == 0 + 1 + 1  # 16 / 32 / 32 physical cores, no overcommit
        w.sim.set_node_online("pve3", False)
        offline = await stock(
            w, {"cpu_cores": 1, "memory_mb": 16384, "disk_gb": 10}, {"nodes": ["pve2", "pve3"]}
        )
        assert offline.quantity == 8
        assert any(h["ineligible"] == "node offline" for h in offline.breakdown["groups"][0]["hosts"])
    finally:
        await w.app.close()


async def test_unreachable_cluster_is_unknown(db_url: str, tmp_path: Path) -> None:
    w = await build_world(db_url, tmp_path)
    try:
        w.sim.add_fault("/cluster/resources", status=596, times=10)
        out = await stock(w, {"cpu_cores": 1, "memory_mb": 1024, "disk_gb": 10})
        assert out.status == "unknown"
        assert out.quantity is None
        assert "cluster capacity" in out.unknown[0]
    finally:
        await w.app.close()
