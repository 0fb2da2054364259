"""Stock from a platform's per-node capacity report: Proxmox VE and the in-memory platform.

Platforms that do not report stock themselves (VirtFusion does, per package and hypervisor group)
but describe their nodes through ``driver.capacity()`` share this source. A product's footprint is
its resolved plan (RAM, cores, system plus additional disk). Each node it may land on is a
:class:`~vpsbridge.core.stock.Host`: RAM and CPU are the node's physical size times the configurable
overcommit (``cpu_overcommit`` / ``ram_overcommit`` in the product's placement or the platform
settings) minus what its VMs are given; storage is the free space of the product's target storage on
that node; an offline node is ineligible. Addresses come from our own IP pools (free = pool size
minus assigned rows), so the quantity is capped by the pools too. The math itself is
:func:`vpsbridge.core.stock.product_quantity`, shared with every platform.

Anything that cannot be read (a node list that times out, a product without a template) makes the
outcome *unknown*, which leaves the published stock alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vpsbridge.core.options import OptionError, resolve_resources
from vpsbridge.core.stock import Footprint, Group, Host, Resource, StoragePool, product_quantity
from vpsbridge.http.errors import UpstreamError
from vpsbridge.platforms.models import CapacityReport
from vpsbridge.services import ipam
from vpsbridge.services.stock.outcome import ProductInputs, StockOutcome
from vpsbridge.services.stock.sources import StockSource, register_stock_source

CAPACITY_TTL = 120.0


def _as_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [s.strip() for s in str(value).split(",") if s.strip()]


def hosts_from(report: CapacityReport, *, ipv_free: dict[str, int | None]) -> tuple[Host, ...]:
    """Nodes as stock hosts; ``ipv_free`` gives each node's free addresses (``None``: not capped)."""
    hosts = []
    for node in report.nodes:
        hosts.append(
            Host(
                id=node.name,
                name=node.name,
                memory_mb=Resource(limit=node.memory_mb, free=node.memory_mb_free),
                cpu_cores=Resource(limit=node.cpu_cores, free=node.cpu_cores_free),
                pools=(
                    StoragePool(
                        id="target",
                        name=str(report.placement.get("storage") or "local"),
                        type_code=0,
                        enabled=True,
                        space=Resource(limit=node.disk_gb or 0, free=node.disk_gb_free or 0),
                        local=True,
                    ),
                ),
                ipv4_free=ipv_free.get(node.name),
                ineligible=None if node.enabled else "node offline",
            )
        )
    return tuple(hosts)


class NodeCapacityStock(StockSource):
    """Proxmox: nodes from ``driver.capacity()``, addresses from vpsbridge's own IP pools."""

    cache_prefix = "stock-pve"
    #: Whether servers take their addresses from vpsbridge's IP pools (so free addresses cap stock).
    addresses_from_pools: ClassVar[bool] = True

    def placement(self, product: ProductInputs) -> dict[str, Any]:
        place = dict(product.placement)
        settings = self.platform.settings
        out: dict[str, Any] = {
            "storage": place.get("storage") or settings.get("storage"),
            "cpu_overcommit": place.get("cpu_overcommit", settings.get("cpu_overcommit", 1.0)),
            "ram_overcommit": place.get("ram_overcommit", settings.get("ram_overcommit", 1.0)),
        }
        nodes = _as_list(place.get("nodes") or place.get("node"))
        if nodes:
            out["nodes"] = nodes
        return out

    async def capacity(self, placement: dict[str, Any]) -> CapacityReport:
        driver: Any = self.driver
        ident = ":".join(f"{k}={placement[k]}" for k in sorted(placement))

        async def fetch() -> Any:
            return (await driver.capacity(placement)).model_dump(mode="json")

        data = await self.shared(self.key("capacity", ident), CAPACITY_TTL, fetch)
        return CapacityReport.model_validate(data)

    async def forget(self, product: ProductInputs) -> None:
        placement = self.placement(product)
        ident = ":".join(f"{k}={placement[k]}" for k in sorted(placement))
        await self.ctx.cache.delete(self.key("capacity", ident))
        self._started.pop(self.key("capacity", ident), None)

    async def quantity(self, product: ProductInputs) -> StockOutcome:
        try:
            spec = resolve_resources(product.plan, {}, strict=False)
        except OptionError as exc:
            return StockOutcome.unknown_because(f"product settings: {exc}")
        placement = self.placement(product)
        try:
            report = await self.capacity(placement)
        except UpstreamError as exc:
            return StockOutcome.unknown_because(f"cluster capacity: {exc}")
        family, per_server = (4, spec.ipv4) if spec.ipv4 > 0 else (6, spec.ipv6)
        group = product.placement.get("group")
        refs = _as_list(product.placement.get("pools" if family == 4 else "pools6"))
        free: dict[str, int | None] = {}
        async with self.ctx.db.session() as session:
            for node in report.nodes:
                if per_server <= 0 or not self.addresses_from_pools:
                    free[node.name] = None
                    continue
                scopes = [s for s in (group, node.name) if s]
                free[node.name] = await ipam.free_addresses(
                    session, platform_id=product.platform_id, family=family, scopes=scopes, pool_refs=refs
                )
        footprint = Footprint(
            memory_mb=spec.memory_mb,
            cpu_cores=spec.cpu_cores,
            storage_gb=spec.disk_gb + spec.additional_disk_gb,
        )
        result = product_quantity(
            footprint,
            [Group(id=f"{self.platform.type}:{self.platform.id}", hosts=hosts_from(report, ipv_free=free))],
            ipv4_per_server=max(per_server, 1),
            buffer_pct=product.buffer_pct,
        )
        breakdown = dict(result.breakdown, address_family=family, placement=placement)
        return StockOutcome(status="ok", quantity=result.quantity, breakdown=breakdown)


class InMemoryStock(NodeCapacityStock):
    """The in-memory platform: nodes from its capacity report; it hands out addresses itself."""

    cache_prefix = "stock-mem"
    addresses_from_pools = False


register_stock_source("proxmox", NodeCapacityStock)
register_stock_source("dummy", InMemoryStock)

__all__ = ["InMemoryStock", "NodeCapacityStock", "hosts_from"]
