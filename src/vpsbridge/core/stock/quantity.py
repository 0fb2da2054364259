"""How many servers of a footprint can still be placed: the stock math, pure and explainable.

Rules (issue 4, improving on the field's ``StockControl``):

* per eligible host, the minimum over memory, CPU and storage of how many servers fit after reserving
  the safety buffer (``ceil(limit * buffer / 100)``) of every *capped* resource; an unlimited
  resource never binds, and neither does one the footprint does not need (size 0);
* storage: with a type code every enabled pool of that type is a candidate and the best one counts
  (disabled pools are skipped; no pool of the type gives 0); without one, the local storage;
* a host's server-count limit caps it too (no buffer: it is a policy, not a resource that fills up);
* per group the sum over hosts, capped by the group-wide IPv4 pool: the *largest* free count any
  eligible host reports, divided by the addresses each server needs - never a sum, because every
  host reports the same shared pool;
* the product is the sum over its groups; a disabled footprint is 0.

Every number that went into the answer is kept in the breakdown so an operator can see which resource
binds where (``vpsbridge stock explain``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vpsbridge.core.stock.capacity import Footprint, Group, Host, Resource, StoragePool

#: What a host counts for when nothing caps it (every resource unlimited and no server limit), so a
#: misconfigured "unlimited" hypervisor cannot publish an absurd stock figure.
UNBOUNDED_HOST = 10_000

#: Order in which ties between binding resources are reported.
HOST_RESOURCES = ("memory", "cpu", "storage", "servers")


def clamp_buffer(buffer_pct: float) -> float:
    """The buffer as a percentage within 0-100 (WHMCS sends text; blanks are handled by the caller)."""
    value = float(buffer_pct)
    if math.isnan(value):
        raise ValueError("buffer_pct is not a number")
    return min(100.0, max(0.0, value))


def fit(resource: Resource, need: int, buffer_pct: float) -> int | None:
    """How many servers needing ``need`` fit in ``resource``; ``None`` when it cannot bind."""
    if need <= 0 or resource.limit is None:
        return None
    reserve = math.ceil(resource.limit * buffer_pct / 100)
    available = resource.free - reserve
    return 0 if available <= 0 else available // need


@dataclass(frozen=True, slots=True)
class HostFit:
    id: str
    name: str
    quantity: int
    binding: str
    #: Servers that fit per resource; ``None`` = unlimited or not needed (never binds).
    fits: dict[str, int | None] = field(default_factory=dict)
    storage_pool: str | None = None
    ineligible: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "eligible": self.ineligible is None,
            "ineligible": self.ineligible,
            "fits": dict(self.fits),
            "storage_pool": self.storage_pool,
            "note": self.note,
            "quantity": self.quantity,
            "binding": self.binding,
        }


@dataclass(frozen=True, slots=True)
class GroupFit:
    id: str
    quantity: int
    binding: str
    hosts: tuple[HostFit, ...] = ()
    hosts_total: int = 0
    ipv4_free: int | None = None
    ipv4_cap: int | None = None
    missing: bool = False
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": "missing" if self.missing else "ok",
            "quantity": self.quantity,
            "binding": self.binding,
            "hosts_total": self.hosts_total,
            "ipv4_free": self.ipv4_free,
            "ipv4_cap": self.ipv4_cap,
            "notes": list(self.notes),
            "hosts": [h.as_dict() for h in self.hosts],
        }


@dataclass(frozen=True, slots=True)
class StockQuantity:
    """The answer: ``quantity`` (≥ 0) and ``breakdown`` (JSON: per group, per host, what binds)."""

    quantity: int
    footprint: Footprint
    buffer_pct: float
    ipv4_per_server: int
    groups: tuple[GroupFit, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def breakdown(self) -> dict[str, Any]:
        fp = self.footprint
        return {
            "quantity": self.quantity,
            "footprint": {
                "memory_mb": fp.memory_mb,
                "cpu_cores": fp.cpu_cores,
                "storage_gb": fp.storage_gb,
                "storage_type": fp.storage_type,
                "enabled": fp.enabled,
            },
            "buffer_pct": self.buffer_pct,
            "ipv4_per_server": self.ipv4_per_server,
            "notes": list(self.notes),
            "groups": [g.as_dict() for g in self.groups],
        }


def _storage_fit(host: Host, fp: Footprint, buffer_pct: float) -> tuple[int | None, str | None, str | None]:
    """(servers that fit, chosen pool, note) for the footprint's primary disk on ``host``."""
    if fp.storage_gb <= 0:
        return None, None, None
    if fp.storage_type > 0:
        candidates: list[StoragePool] = [p for p in host.pools if p.type_code == fp.storage_type]
        if not candidates:
            return 0, None, f"no storage of type {fp.storage_type}"
        enabled = [p for p in candidates if p.enabled]
        if not enabled:
            return 0, None, f"every storage of type {fp.storage_type} is disabled"
    else:
        enabled = [p for p in host.pools if p.local and p.enabled]
        if not enabled:
            return 0, None, "local storage is disabled"
    best: tuple[int | None, str | None] = (0, None)
    for pool in enabled:
        value = fit(pool.space, fp.storage_gb, buffer_pct)
        if value is None:
            return None, pool.name or pool.id, None  # unlimited pool: cannot bind
        if best[1] is None or value > (best[0] or 0):
            best = (value, pool.name or pool.id)
    return best[0], best[1], None


def host_fit(host: Host, fp: Footprint, buffer_pct: float) -> HostFit:
    """Servers of ``fp`` that fit on ``host``, and which resource binds."""
    if host.ineligible is not None:
        return HostFit(
            id=host.id, name=host.name, quantity=0, binding="ineligible", ineligible=host.ineligible
        )
    storage, pool, note = _storage_fit(host, fp, buffer_pct)
    servers = None if host.servers is None or host.servers.limit is None else max(0, host.servers.free)
    fits: dict[str, int | None] = {
        "memory": fit(host.memory_mb, fp.memory_mb, buffer_pct),
        "cpu": fit(host.cpu_cores, fp.cpu_cores, buffer_pct),
        "storage": storage,
        "servers": servers,
    }
    bound = [(value, name) for name in HOST_RESOURCES if (value := fits[name]) is not None]
    if not bound:
        quantity, binding = UNBOUNDED_HOST, "unbounded"
    else:
        quantity = min(value for value, _ in bound)
        binding = next(name for value, name in bound if value == quantity)
    return HostFit(
        id=host.id,
        name=host.name,
        quantity=quantity,
        binding=binding,
        fits=fits,
        storage_pool=pool,
        note=note,
    )


def group_fit(group: Group, fp: Footprint, buffer_pct: float, ipv4_per_server: int) -> GroupFit:
    """Sum over the group's hosts, capped by the shared IPv4 pool (largest report, never a sum)."""
    if group.missing:
        return GroupFit(id=group.id, quantity=0, binding="missing", missing=True, notes=group.notes)
    hosts = tuple(host_fit(h, fp, buffer_pct) for h in group.hosts)
    total = sum(h.quantity for h in hosts)
    notes = list(group.notes)
    reports = [h.ipv4_free for h in group.hosts if h.ineligible is None and h.ipv4_free is not None]
    ipv4_free = max(0, max(reports)) if reports else None
    ipv4_cap = None if ipv4_free is None else ipv4_free // ipv4_per_server
    if ipv4_free is None and any(h.ineligible is None for h in group.hosts):
        notes.append("IPv4: no free count reported, not capped")
    if not any(h.ineligible is None for h in group.hosts):
        quantity, binding = 0, "no eligible host"
    elif ipv4_cap is not None and ipv4_cap < total:
        quantity, binding = ipv4_cap, "ipv4"
    else:
        quantity, binding = total, "hosts"
    return GroupFit(
        id=group.id,
        quantity=quantity,
        binding=binding,
        hosts=hosts,
        hosts_total=total,
        ipv4_free=ipv4_free,
        ipv4_cap=ipv4_cap,
        notes=tuple(notes),
    )


def product_quantity(
    footprint: Footprint,
    groups: Sequence[Group],
    *,
    ipv4_per_server: int = 1,
    buffer_pct: float = 10.0,
) -> StockQuantity:
    """The stock of a product: the sum over its (de-duplicated) groups of what fits there."""
    buffer = clamp_buffer(buffer_pct)
    per_server = max(1, int(ipv4_per_server))
    if not footprint.enabled:
        return StockQuantity(
            quantity=0,
            footprint=footprint,
            buffer_pct=buffer,
            ipv4_per_server=per_server,
            notes=("the package is disabled",),
        )
    seen: set[str] = set()
    fits: list[GroupFit] = []
    for group in groups:
        if group.id in seen:
            continue
        seen.add(group.id)
        fits.append(group_fit(group, footprint, buffer, per_server))
    return StockQuantity(
        quantity=max(0, sum(g.quantity for g in fits)),
        footprint=footprint,
        buffer_pct=buffer,
        ipv4_per_server=per_server,
        groups=tuple(fits),
    )
