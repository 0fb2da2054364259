"""IP address management: handing pool addresses to servers, transactionally, and taking them back.

The ``ip_addresses`` table holds one row per address that is taken; its unique ``(pool_id,
address)`` constraint is what makes double allocation impossible, across any number of processes.
An address is free exactly when it has no row - never "when no live service seems to use it", which
is how addresses get handed out twice while a long clone is still running.

Allocation locks the pool row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions are
already exclusive), picks the lowest address of the pool's range without a row, and inserts it in a
savepoint; should another writer win the same address anyway, the unique constraint rejects the
insert and the next address is tried. Rows are removed only by :func:`release`, which the terminate
workflow calls after the VM is confirmed destroyed: a server in ``error_terminate`` keeps its
addresses until an operator decides.

Pools serve a node or a group (``scope``) or the whole platform (no scope). IPv4 pools hand out
single addresses; IPv6 pools hand out single addresses or, with the pool setting
``assign_prefix`` (e.g. 64), a whole routed prefix per server, stored as ``2001:db8:0:5::/64``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vpsbridge.core.ipam import reverse_zone_hint
from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.services.lookup import Ref, find_by_ref
from vpsbridge.store.models import IpAddress, IpPool, Server

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

ALLOCATED = "allocated"
RESERVED = "reserved"
#: How many candidate addresses one pool is tried with before allocation gives up on it.
_MAX_COLLISIONS = 50


class PoolExhausted(Conflict):
    """No enabled pool that may serve the server has a free address of the family asked for."""


@dataclass(frozen=True)
class Allocation:
    """One address (or routed IPv6 prefix) of a server, with what its network configuration needs."""

    pool_id: int
    pool_name: str
    address: str
    family: int
    prefix_length: int
    gateway: str | None
    dns_servers: tuple[str, ...] = ()
    bridge: str | None = None
    vlan: int | None = None
    #: For an IPv6 prefix assignment: the prefix (``2001:db8:0:5::/64``); ``address`` is its ``::1``.
    subnet: str | None = None
    scope: str | None = None

    @property
    def cidr(self) -> str:
        """``address/prefix_length`` as cloud-init and the firewall IP set want it."""
        return f"{self.address}/{self.prefix_length}"

    @property
    def host_cidr(self) -> str:
        """What the anti-spoofing IP set must allow: the host (/32, /128) or the routed prefix."""
        if self.subnet:
            return self.subnet
        return f"{self.address}/{32 if self.family == 4 else 128}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "pool_id": self.pool_id,
            "pool_name": self.pool_name,
            "address": self.address,
            "family": self.family,
            "prefix_length": self.prefix_length,
            "gateway": self.gateway,
            "dns_servers": list(self.dns_servers),
            "bridge": self.bridge,
            "vlan": self.vlan,
            "subnet": self.subnet,
            "scope": self.scope,
        }


@dataclass(frozen=True)
class PoolUsage:
    id: int
    name: str
    family: int
    network: str
    scope: str | None
    platform_id: int | None
    enabled: bool
    size: int
    allocated: int
    reserved: int
    free: int
    #: The reverse zone to create for the pool (or what to do instead when it is not aligned).
    reverse_zone: str
    servers: int = 0
    unit: str = "address"
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "family": self.family,
            "network": self.network,
            "scope": self.scope,
            "platform_id": self.platform_id,
            "enabled": self.enabled,
            "size": self.size,
            "allocated": self.allocated,
            "reserved": self.reserved,
            "free": self.free,
            "servers": self.servers,
            "unit": self.unit,
            "reverse_zone": self.reverse_zone,
        }


# --- pool geometry ------------------------------------------------------------------------------------


def _assign_prefix(pool: IpPool) -> int | None:
    """The routed prefix length handed to each server (IPv6 pools with ``assign_prefix``), else None."""
    if pool.family != 6:
        return None
    raw = (pool.settings or {}).get("assign_prefix")
    if raw in (None, "", 0, 128):
        return None
    value = int(raw)
    net = ipaddress.ip_network(pool.network)
    if not net.prefixlen <= value <= 128:
        raise Invalid(
            f"IP pool {pool.name!r}: assign_prefix /{value} does not fit in {net}",
            field="settings.assign_prefix",
        )
    return value


def _bounds(pool: IpPool) -> tuple[int, int]:
    net = ipaddress.ip_network(pool.network)
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4 and net.prefixlen < 31:
        first, last = first + 1, last - 1
    elif net.version == 6 and net.prefixlen < 127:
        first += 1  # the subnet-router anycast address is not a host address
    if pool.range_start:
        first = max(first, int(ipaddress.ip_address(pool.range_start)))
    if pool.range_end:
        last = min(last, int(ipaddress.ip_address(pool.range_end)))
    return first, last


def _candidates(pool: IpPool, taken: set[str]) -> Iterator[str]:
    """Free address (or prefix) texts of ``pool``, lowest first; at most ``len(taken) + 1`` skips."""
    gateway = pool.gateway
    prefix = _assign_prefix(pool)
    net = ipaddress.ip_network(pool.network)
    if prefix is not None:
        for sub in net.subnets(new_prefix=prefix) if prefix > net.prefixlen else iter((net,)):
            text = str(sub)
            if text in taken or (gateway and ipaddress.ip_address(gateway) in sub):
                continue
            yield text
        return
    first, last = _bounds(pool)
    value = first
    while value <= last:
        text = str(ipaddress.ip_address(value))
        if text not in taken and text != gateway:
            yield text
        value += 1


def pool_capacity(pool: IpPool) -> int:
    """How many servers' worth of addresses (or prefixes) the pool can hand out in total."""
    prefix = _assign_prefix(pool)
    net = ipaddress.ip_network(pool.network)
    if prefix is not None:
        count = int(2 ** (prefix - net.prefixlen))
        if pool.gateway and ipaddress.ip_address(pool.gateway) in net:
            count -= 1  # the prefix holding the gateway is never handed out
        return max(count, 0)
    first, last = _bounds(pool)
    size = max(last - first + 1, 0)
    if pool.gateway and first <= int(ipaddress.ip_address(pool.gateway)) <= last:
        size -= 1
    return size


def _allocation(pool: IpPool, text: str) -> Allocation:
    if "/" in text:
        sub = ipaddress.ip_network(text)
        return Allocation(
            pool_id=pool.id,
            pool_name=pool.name,
            address=str(sub.network_address + 1),
            family=pool.family,
            prefix_length=sub.prefixlen,
            gateway=pool.gateway,
            dns_servers=tuple(str(s) for s in pool.dns_servers or []),
            bridge=pool.bridge,
            vlan=pool.vlan,
            subnet=str(sub),
            scope=pool.scope,
        )
    return Allocation(
        pool_id=pool.id,
        pool_name=pool.name,
        address=text,
        family=pool.family,
        prefix_length=int(pool.prefix_length or ipaddress.ip_network(pool.network).prefixlen),
        gateway=pool.gateway,
        dns_servers=tuple(str(s) for s in pool.dns_servers or []),
        bridge=pool.bridge,
        vlan=pool.vlan,
        scope=pool.scope,
    )


# --- choosing pools -----------------------------------------------------------------------------------


async def candidate_pools(
    session: AsyncSession,
    *,
    platform_id: int | None,
    family: int,
    scopes: Sequence[str] = (),
    pool_refs: Sequence[int | str] = (),
) -> list[IpPool]:
    """Enabled pools that may serve a server, best first.

    Explicit ``pool_refs`` (ids or names from the product) come first, in their order; otherwise
    pools of the platform (or of no platform) whose scope is one of ``scopes`` (node, group) come
    before unscoped ones. A pool scoped to something not in ``scopes`` never serves.
    """
    query = select(IpPool).where(IpPool.enabled.is_(True), IpPool.family == family)
    if platform_id is not None:
        query = query.where(or_(IpPool.platform_id == platform_id, IpPool.platform_id.is_(None)))
    rows = list((await session.execute(query.order_by(IpPool.id))).scalars())
    if pool_refs:
        wanted = [str(r) for r in pool_refs]
        by_ref = {str(p.id): p for p in rows} | {p.name: p for p in rows}
        return [by_ref[r] for r in wanted if r in by_ref]
    allowed = list(scopes)
    scoped = sorted(
        (p for p in rows if p.scope and p.scope in allowed), key=lambda p: allowed.index(p.scope or "")
    )
    unscoped = [p for p in rows if not p.scope]
    return scoped + unscoped


async def _lock_pool(session: AsyncSession, pool_id: int) -> IpPool | None:
    query = select(IpPool).where(IpPool.id == pool_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return (await session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()


async def _taken(session: AsyncSession, pool_id: int) -> set[str]:
    return set(
        (await session.execute(select(IpAddress.address).where(IpAddress.pool_id == pool_id))).scalars()
    )


async def _take_from(
    session: AsyncSession, pool: IpPool, count: int, server_id: int | None, state: str, note: str | None
) -> list[Allocation]:
    """Insert up to ``count`` rows for the lowest free addresses of ``pool`` (pool row locked)."""
    out: list[Allocation] = []
    collisions = 0
    taken = await _taken(session, pool.id)
    candidates = _candidates(pool, taken)
    while len(out) < count:
        text = next(candidates, None)
        if text is None:
            break
        try:
            async with session.begin_nested():
                session.add(
                    IpAddress(pool_id=pool.id, address=text, server_id=server_id, state=state, note=note)
                )
                await session.flush()
        except IntegrityError:
            collisions += 1
            if collisions > _MAX_COLLISIONS:
                break
            continue
        out.append(_allocation(pool, text))
    return out


async def addresses_of(session: AsyncSession, server_id: int) -> list[Allocation]:
    """The server's addresses in allocation order (the first IPv4, else IPv6, is the primary)."""
    rows = (
        await session.execute(
            select(IpAddress, IpPool)
            .join(IpPool, IpPool.id == IpAddress.pool_id)
            .where(IpAddress.server_id == server_id)
            .order_by(IpAddress.id)
        )
    ).all()
    return [_allocation(pool, row.address) for row, pool in rows]


async def allocate(
    session: AsyncSession,
    *,
    server_id: int,
    platform_id: int | None,
    ipv4: int = 1,
    ipv6: int = 0,
    scopes: Sequence[str] = (),
    pool_refs: Sequence[int | str] = (),
    pools6: Sequence[int | str] = (),
) -> list[Allocation]:
    """Give ``server_id`` ``ipv4`` IPv4 and ``ipv6`` IPv6 addresses, in the caller's transaction.

    Idempotent: addresses the server already has count, only the missing ones are allocated (a
    deploy step that runs twice allocates nothing new). Several IPv4 addresses come from the same
    pool when it has room, so they share a gateway. Raises :class:`PoolExhausted` (the transaction
    should then be rolled back, releasing any partial allocation).
    """
    if ipv4 < 0 or ipv6 < 0:
        raise Invalid("address counts cannot be negative")
    existing = await addresses_of(session, server_id)
    for family, wanted, refs in ((4, ipv4, pool_refs), (6, ipv6, pools6 or pool_refs)):
        missing = wanted - sum(1 for a in existing if a.family == family)
        if missing <= 0:
            continue
        pools = await candidate_pools(
            session, platform_id=platform_id, family=family, scopes=scopes, pool_refs=refs
        )
        # Prefer the pool the server already has addresses in (same gateway, same bridge).
        used = [a.pool_id for a in existing if a.family == family]
        pools.sort(key=lambda p: 0 if p.id in used else 1)
        for pool in pools:
            locked = await _lock_pool(session, pool.id)
            if locked is None or not locked.enabled:
                continue
            got = await _take_from(session, locked, missing, server_id, ALLOCATED, None)
            existing.extend(got)
            missing -= len(got)
            if missing <= 0:
                break
        if missing > 0:
            where = f" for {', '.join(scopes)}" if scopes else ""
            names = ", ".join(p.name for p in pools) or "none configured"
            raise PoolExhausted(
                f"no free IPv{family} address{where}: {missing} more needed, pools tried: {names}",
                details={"family": family, "missing": missing, "server_id": server_id},
            )
    return await addresses_of(session, server_id)


async def allocate_for(ctx: AppContext, **kwargs: Any) -> list[Allocation]:
    """:func:`allocate` in a transaction of its own."""
    async with ctx.db.session() as session:
        return await allocate(session, **kwargs)


async def assign(
    ctx: AppContext,
    pool_ref: Ref,
    address: str,
    *,
    server_id: int | None = None,
    note: str | None = None,
) -> Allocation:
    """Take one specific address: for a server, or (no server) reserved so nobody gets it."""
    async with ctx.db.session() as session:
        pool = await find_by_ref(session, IpPool, pool_ref, label="IP pool")
        text = _normalise_in_pool(pool, address)
        if server_id is not None and await session.get(Server, server_id) is None:
            raise NotFound(f"no server {server_id}")
        row = IpAddress(
            pool_id=pool.id,
            address=text,
            server_id=server_id,
            state=ALLOCATED if server_id is not None else RESERVED,
            note=note,
        )
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
        except IntegrityError:
            holder = (
                await session.execute(
                    select(IpAddress).where(IpAddress.pool_id == pool.id, IpAddress.address == text)
                )
            ).scalar_one_or_none()
            who = f"server {holder.server_id}" if holder and holder.server_id else "a reservation"
            raise Conflict(f"{text} in pool {pool.name!r} is already taken by {who}") from None
        return _allocation(pool, text)


def _normalise_in_pool(pool: IpPool, address: str) -> str:
    net = ipaddress.ip_network(pool.network)
    text = address.strip()
    try:
        if "/" in text:
            sub = ipaddress.ip_network(text)
            if sub.version != net.version or not sub.subnet_of(net):  # type: ignore[arg-type]
                raise Invalid(f"{text} is not inside pool {pool.name!r} ({net})", field="address")
            return str(sub)
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise Invalid(f"{text!r} is not an IP address", field="address") from None
    first, last = _bounds(pool)
    if addr.version != net.version or not first <= int(addr) <= last:
        raise Invalid(f"{addr} is outside the assignable range of pool {pool.name!r}", field="address")
    if pool.gateway and str(addr) == pool.gateway:
        raise Invalid(f"{addr} is the gateway of pool {pool.name!r}", field="address")
    prefix = _assign_prefix(pool)
    if prefix is not None:
        return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))
    return str(addr)


async def release(
    target: AppContext | AsyncSession, server_id: int, *, addresses: Iterable[str] | None = None
) -> int:
    """Free the server's addresses (all, or the given ones); returns how many rows went.

    Call only once the server is confirmed gone (or the addresses confirmed unused): a freed
    address can be handed to the next deploy at once.
    """
    query = delete(IpAddress).where(IpAddress.server_id == server_id)
    if addresses is not None:
        wanted = list(addresses)
        if not wanted:
            return 0
        query = query.where(IpAddress.address.in_(wanted))
    if isinstance(target, AsyncSession):
        result = await target.execute(query)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
    async with target.db.session() as session:
        result = await session.execute(query)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def unreserve(ctx: AppContext, pool_ref: Ref, address: str) -> None:
    """Free one address held by a reservation (or by a server, on an operator's explicit word)."""
    async with ctx.db.session() as session:
        pool = await find_by_ref(session, IpPool, pool_ref, label="IP pool")
        text = _normalise_in_pool(pool, address)
        result = await session.execute(
            delete(IpAddress).where(IpAddress.pool_id == pool.id, IpAddress.address == text)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"{text} is not taken in pool {pool.name!r}")


async def pool_usage(ctx: AppContext, pool_ref: Ref | None = None) -> list[PoolUsage]:
    """Size, allocated, reserved and free per pool, with the reverse zone hint for its network."""
    async with ctx.db.session() as session:
        if pool_ref is not None:
            pools = [await find_by_ref(session, IpPool, pool_ref, label="IP pool")]
        else:
            pools = list((await session.execute(select(IpPool).order_by(IpPool.name))).scalars())
        ids = [p.id for p in pools]
        counts: dict[tuple[int, str], int] = {}
        servers: dict[int, int] = {}
        if ids:
            grouped = await session.execute(
                select(IpAddress.pool_id, IpAddress.state, func.count())
                .where(IpAddress.pool_id.in_(ids))
                .group_by(IpAddress.pool_id, IpAddress.state)
            )
            counts = {(pid, state): n for pid, state, n in grouped.all()}
            distinct = await session.execute(
                select(IpAddress.pool_id, func.count(func.distinct(IpAddress.server_id)))
                .where(IpAddress.pool_id.in_(ids))
                .group_by(IpAddress.pool_id)
            )
            servers = {pid: n for pid, n in distinct.all()}
        out = []
        for pool in pools:
            size = pool_capacity(pool)
            allocated = counts.get((pool.id, ALLOCATED), 0)
            reserved = counts.get((pool.id, RESERVED), 0)
            out.append(
                PoolUsage(
                    id=pool.id,
                    name=pool.name,
                    family=pool.family,
                    network=pool.network,
                    scope=pool.scope,
                    platform_id=pool.platform_id,
                    enabled=pool.enabled,
                    size=size,
                    allocated=allocated,
                    reserved=reserved,
                    free=max(size - allocated - reserved, 0),
                    reverse_zone=reverse_zone_hint(pool.network),
                    servers=servers.get(pool.id, 0),
                    unit="prefix" if _assign_prefix(pool) else "address",
                )
            )
        return out


async def free_addresses(
    session: AsyncSession,
    *,
    platform_id: int | None,
    family: int,
    scopes: Sequence[str] = (),
    pool_refs: Sequence[int | str] = (),
) -> int:
    """Free addresses of ``family`` across the pools that may serve (for stock)."""
    pools = await candidate_pools(
        session, platform_id=platform_id, family=family, scopes=scopes, pool_refs=pool_refs
    )
    if not pools:
        return 0
    counts = dict(
        (
            await session.execute(
                select(IpAddress.pool_id, func.count())
                .where(IpAddress.pool_id.in_([p.id for p in pools]))
                .group_by(IpAddress.pool_id)
            )
        ).all()
    )
    return sum(max(pool_capacity(p) - counts.get(p.id, 0), 0) for p in pools)


__all__ = [
    "ALLOCATED",
    "RESERVED",
    "Allocation",
    "PoolExhausted",
    "PoolUsage",
    "addresses_of",
    "allocate",
    "allocate_for",
    "assign",
    "candidate_pools",
    "free_addresses",
    "pool_capacity",
    "pool_usage",
    "release",
    "unreserve",
]
