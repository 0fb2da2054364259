"""IP pools: the networks servers get their addresses from.

A pool's network is validated with :mod:`ipaddress` and stored in canonical form; its family is
derived from it, never typed. The optional range limits which addresses are handed out, the
gateway must sit in the on-link network (the pool network widened to ``prefix_length``, so a /26
pool can live in a /24 whose gateway is outside the pool). Usage figures come from the assignment
rows in ``ip_addresses``, the only truth about what is taken.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsbridge.services.audit import Actor, record
from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.services.inputs import changes, parse_input
from vpsbridge.services.lookup import Ref, check_name, ensure_unique_name, find_by_ref, flush_or_conflict
from vpsbridge.services.schemas import IpPoolCreate, IpPoolOut, IpPoolUpdate
from vpsbridge.store.models import IpAddress, IpPool, Platform

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

LABEL = "IP pool"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NOT_NULL = ("name", "network", "dns_servers", "settings", "enabled")


def _address(value: str, field: str, family: int) -> IPAddress:
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        raise Invalid(f"{field}: {value!r} is not an IP address", field=field) from None
    if addr.version != family:
        raise Invalid(f"{field}: {value} is IPv{addr.version} but the network is IPv{family}", field=field)
    return addr


def _network(value: str) -> IPNetwork:
    text = value.strip()
    if "/" not in text:
        raise Invalid(f"network: {text!r} needs a prefix length, e.g. 192.0.2.0/24", field="network")
    try:
        return ipaddress.ip_network(text)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise Invalid(
                f"network: {text!r} is not a network in CIDR form ({exc})", field="network"
            ) from None
        raise Invalid(f"network: {text} has host bits set; did you mean {loose}?", field="network") from None


def _usable_bounds(net: IPNetwork) -> tuple[int, int]:
    """First and last address a server may get when no range is given."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4 and net.prefixlen < 31:
        return first + 1, last - 1
    if net.version == 6 and net.prefixlen < 127:
        return first + 1, last  # the subnet-router anycast address is not a host address
    return first, last


def validate_pool(values: dict[str, Any]) -> dict[str, Any]:
    """Check a complete set of pool values and return them normalised (family derived, CIDR canonical).

    Raises :class:`Invalid` naming the first offending field.
    """
    net = _network(values["network"])
    out = dict(values)
    out["network"] = str(net)
    out["family"] = net.version
    prefix = values.get("prefix_length")
    if prefix is None:
        prefix = net.prefixlen
    if prefix > net.max_prefixlen:
        raise Invalid(
            f"prefix_length: IPv{net.version} allows at most /{net.max_prefixlen}", field="prefix_length"
        )
    if prefix > net.prefixlen:
        raise Invalid(
            f"prefix_length: /{prefix} is narrower than the pool network {net}; servers would not reach "
            "all pool addresses on-link",
            field="prefix_length",
        )
    out["prefix_length"] = prefix
    on_link = net.supernet(new_prefix=prefix) if prefix < net.prefixlen else net

    lo, hi = _usable_bounds(net)
    for field in ("range_start", "range_end"):
        raw = values.get(field)
        if raw is None or not str(raw).strip():
            out[field] = None
            continue
        addr = _address(str(raw), field, net.version)
        if addr not in net:
            raise Invalid(f"{field}: {addr} is outside the network {net}", field=field)
        out[field] = str(addr)
    start = int(ipaddress.ip_address(out["range_start"])) if out["range_start"] else lo
    end = int(ipaddress.ip_address(out["range_end"])) if out["range_end"] else hi
    if start > end:
        raise Invalid(
            f"range_end: {ipaddress.ip_address(end)} comes before range_start {ipaddress.ip_address(start)}",
            field="range_end",
        )

    gateway = values.get("gateway")
    if gateway is not None and str(gateway).strip():
        gw = _address(str(gateway), "gateway", net.version)
        if gw not in on_link:
            raise Invalid(f"gateway: {gw} is outside the on-link network {on_link}", field="gateway")
        if start <= int(gw) <= end and (out["range_start"] or out["range_end"]):
            raise Invalid(f"gateway: {gw} lies inside the assignable range", field="gateway")
        out["gateway"] = str(gw)
    else:
        out["gateway"] = None

    servers = []
    for position, raw in enumerate(values.get("dns_servers") or []):
        try:
            servers.append(str(ipaddress.ip_address(str(raw).strip())))
        except ValueError:
            raise Invalid(
                f"dns_servers[{position}]: {raw!r} is not an IP address", field=f"dns_servers.{position}"
            ) from None
    out["dns_servers"] = servers
    return out


def pool_size(row: IpPool) -> int:
    """How many addresses the pool can hand out (its range, or the usable network, minus the gateway)."""
    net = ipaddress.ip_network(row.network)
    lo, hi = _usable_bounds(net)
    start = int(ipaddress.ip_address(row.range_start)) if row.range_start else lo
    end = int(ipaddress.ip_address(row.range_end)) if row.range_end else hi
    size = max(end - start + 1, 0)
    if row.gateway and start <= int(ipaddress.ip_address(row.gateway)) <= end:
        size -= 1
    return size


async def _usage(session: AsyncSession, pool_ids: list[int]) -> dict[int, dict[str, int]]:
    usage: dict[int, dict[str, int]] = {pid: {} for pid in pool_ids}
    if not pool_ids:
        return usage
    query = (
        select(IpAddress.pool_id, IpAddress.state, func.count())
        .where(IpAddress.pool_id.in_(pool_ids))
        .group_by(IpAddress.pool_id, IpAddress.state)
    )
    for pool_id, state, count in (await session.execute(query)).all():
        usage[pool_id][state] = count
    return usage


def pool_out(row: IpPool, platform_name: str | None, usage: dict[str, int]) -> IpPoolOut:
    size = pool_size(row)
    allocated = usage.get("allocated", 0)
    reserved = usage.get("reserved", 0)
    return IpPoolOut(
        id=row.id,
        name=row.name,
        platform_id=row.platform_id,
        platform_name=platform_name,
        scope=row.scope,
        family=row.family,
        network=row.network,
        range_start=row.range_start,
        range_end=row.range_end,
        gateway=row.gateway,
        prefix_length=row.prefix_length,
        dns_servers=[str(s) for s in row.dns_servers or []],
        bridge=row.bridge,
        vlan=row.vlan,
        settings=dict(row.settings or {}),
        enabled=row.enabled,
        size=size,
        allocated=allocated,
        reserved=reserved,
        free=max(size - allocated - reserved, 0),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _out(session: AsyncSession, row: IpPool) -> IpPoolOut:
    platform = await session.get(Platform, row.platform_id) if row.platform_id else None
    usage = await _usage(session, [row.id])
    return pool_out(row, platform.name if platform else None, usage[row.id])


async def _platform_id(session: AsyncSession, ref: Ref | None) -> int | None:
    if ref is None or (isinstance(ref, str) and not ref.strip()):
        return None
    try:
        return (await find_by_ref(session, Platform, ref, label="platform")).id
    except NotFound as exc:
        raise Invalid(str(exc), field="platform") from None


async def create_pool(ctx: AppContext, data: IpPoolCreate | Mapping[str, Any], actor: Actor) -> IpPoolOut:
    spec = parse_input(IpPoolCreate, data)
    check_name(spec.name)
    values = validate_pool(spec.model_dump(exclude={"platform"}))
    async with ctx.db.session() as session:
        await ensure_unique_name(session, IpPool, spec.name, label=LABEL)
        values["platform_id"] = await _platform_id(session, spec.platform)
        row = IpPool(**values)
        session.add(row)
        await flush_or_conflict(session, f"an IP pool named {spec.name!r} already exists")
        await record(session, actor, "pool.create", "ip_pool", row.id, values)
        return await _out(session, row)


async def list_pools(ctx: AppContext) -> list[IpPoolOut]:
    async with ctx.db.session() as session:
        query = (
            select(IpPool, Platform.name)
            .outerjoin(Platform, Platform.id == IpPool.platform_id)
            .order_by(IpPool.name)
        )
        rows = (await session.execute(query)).all()
        usage = await _usage(session, [r.id for r, _ in rows])
        return [pool_out(row, name, usage[row.id]) for row, name in rows]


async def get_pool(ctx: AppContext, ref: Ref) -> IpPoolOut:
    async with ctx.db.session() as session:
        return await _out(session, await find_by_ref(session, IpPool, ref, label=LABEL))


_POOL_FIELDS = (
    "name", "scope", "network", "range_start", "range_end", "gateway", "prefix_length",
    "dns_servers", "bridge", "vlan", "settings", "enabled",
)  # fmt: skip


async def update_pool(
    ctx: AppContext, ref: Ref, data: IpPoolUpdate | Mapping[str, Any], actor: Actor
) -> IpPoolOut:
    """Change the given fields; the merged pool is re-validated as a whole.

    Changing the network or range is refused while assigned addresses would fall outside it.
    """
    patch = changes(parse_input(IpPoolUpdate, data))
    for field in _NOT_NULL:
        if field in patch and patch[field] is None:
            raise Invalid(f"{field} cannot be empty", field=field)
    if "name" in patch:
        check_name(patch["name"])
    async with ctx.db.session() as session:
        row = await find_by_ref(session, IpPool, ref, label=LABEL)
        if "name" in patch:
            await ensure_unique_name(session, IpPool, patch["name"], label=LABEL, exclude_id=row.id)
        merged = {f: getattr(row, f) for f in _POOL_FIELDS}
        if "network" in patch and "prefix_length" not in patch:
            merged["prefix_length"] = None  # re-derive from the new network
        merged.update({k: v for k, v in patch.items() if k != "platform"})
        values = validate_pool(merged)
        if "platform" in patch:
            values["platform_id"] = await _platform_id(session, patch["platform"])
        if {"network", "range_start", "range_end"} & patch.keys():
            await _check_assigned_inside(session, row.id, values)
        for field, value in values.items():
            setattr(row, field, value)
        await flush_or_conflict(session, f"an IP pool named {row.name!r} already exists")
        await record(
            session, actor, "pool.update", "ip_pool", row.id,
            {"fields": sorted(patch), "values": {k: values.get(k, v) for k, v in patch.items()}},
        )  # fmt: skip
        return await _out(session, row)


async def _check_assigned_inside(session: AsyncSession, pool_id: int, values: dict[str, Any]) -> None:
    net = ipaddress.ip_network(values["network"])
    lo = int(ipaddress.ip_address(values["range_start"])) if values["range_start"] else None
    hi = int(ipaddress.ip_address(values["range_end"])) if values["range_end"] else None
    addresses = (
        await session.execute(select(IpAddress.address).where(IpAddress.pool_id == pool_id))
    ).scalars()
    outside = []
    for text in addresses:
        addr = ipaddress.ip_address(text)
        value = int(addr)
        if (
            addr.version != net.version
            or addr not in net
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            outside.append(text)
    if outside:
        shown = ", ".join(sorted(outside)[:5]) + (" ..." if len(outside) > 5 else "")
        raise Conflict(
            f"{len(outside)} assigned address(es) would fall outside the new network or range: {shown}",
            details={"addresses": sorted(outside)[:50]},
        )


async def delete_pool(ctx: AppContext, ref: Ref, actor: Actor) -> None:
    """Delete a pool that has no assigned or reserved addresses."""
    async with ctx.db.session() as session:
        row = await find_by_ref(session, IpPool, ref, label=LABEL)
        count = await session.scalar(
            select(func.count()).select_from(IpAddress).where(IpAddress.pool_id == row.id)
        )
        if count:
            raise Conflict(
                f"IP pool {row.name!r} still has {count} assigned or reserved address"
                f"{'es' if count != 1 else ''}; release them first",
                details={"pool_id": row.id},
            )
        await record(session, actor, "pool.delete", "ip_pool", row.id, {"name": row.name})
        await session.delete(row)
        await flush_or_conflict(session, f"IP pool {row.name!r} still has addresses")
