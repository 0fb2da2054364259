"""Proxmox VMIDs reserved in our database before a clone (see :class:`VmidReservation`).

The order of checks is what keeps parallel deploys apart: ``/cluster/nextid`` suggests an id, the
unique row in ``vmid_reservations`` decides between our own deploys (the loser moves to the next
id), and ``/cluster/nextid?vmid=N`` confirms nobody outside vpsbridge created it meanwhile. A clone
can still lose against a VM created by hand in the last second; it then fails with "already
exists", the reservation is given up and the deploy reserves again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from vpsbridge.services.errors import Conflict
from vpsbridge.store.models import VmidReservation

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

#: How many ids one reservation walks past before giving up (a cluster full of foreign VMs).
MAX_PROBES = 500


class VmidSource(Protocol):
    async def next_vmid(self) -> int: ...

    async def vmid_free(self, vmid: int) -> bool: ...


async def reserved_vmid(ctx: AppContext, server_id: int) -> int | None:
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                select(VmidReservation.vmid)
                .where(VmidReservation.server_id == server_id)
                .order_by(VmidReservation.id)
            )
        ).first()
        return int(row[0]) if row else None


async def _try_insert(ctx: AppContext, platform_id: int, vmid: int, server_id: int) -> bool:
    try:
        async with ctx.db.session() as session:
            session.add(VmidReservation(platform_id=platform_id, vmid=vmid, server_id=server_id))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def reserve_vmid(
    ctx: AppContext, platform_id: int, server_id: int, source: VmidSource, *, minimum: int = 100
) -> int:
    """The VMID reserved for ``server_id`` (reserving one now if it has none); idempotent."""
    existing = await reserved_vmid(ctx, server_id)
    if existing is not None:
        return existing
    candidate = max(await source.next_vmid(), minimum)
    for _ in range(MAX_PROBES):
        if await _try_insert(ctx, platform_id, candidate, server_id):
            if await source.vmid_free(candidate):
                return candidate
            # Taken outside vpsbridge: not ours to reserve.
            await release_vmid(ctx, platform_id, candidate)
        candidate += 1
    raise Conflict(f"no free VMID found from {minimum} within {MAX_PROBES} ids; check the cluster")


async def reserve_extra_vmid(
    ctx: AppContext, platform_id: int, server_id: int, source: VmidSource, *, minimum: int = 100
) -> int:
    """A further VMID for ``server_id`` (a rebuild's staging clone); the first reservation stays its own."""
    candidate = max(await source.next_vmid(), minimum)
    for _ in range(MAX_PROBES):
        if await _try_insert(ctx, platform_id, candidate, server_id):
            if await source.vmid_free(candidate):
                return candidate
            await release_vmid(ctx, platform_id, candidate)
        candidate += 1
    raise Conflict(f"no free VMID found from {minimum} within {MAX_PROBES} ids; check the cluster")


async def release_vmid(ctx: AppContext, platform_id: int, vmid: int) -> None:
    """Give the id back (the VM was destroyed, or the clone lost a race for it)."""
    async with ctx.db.session() as session:
        await session.execute(
            delete(VmidReservation).where(
                VmidReservation.platform_id == platform_id, VmidReservation.vmid == vmid
            )
        )


__all__ = [
    "MAX_PROBES",
    "VmidSource",
    "release_vmid",
    "reserve_extra_vmid",
    "reserve_vmid",
    "reserved_vmid",
]
