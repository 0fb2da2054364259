"""Property tests of the stock math: monotone in free resources and in the buffer, unlimited resources
never bind, the storage type code picks the best enabled pool, the IPv4 pool is never summed."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from vpsbridge.core.stock import (
    Footprint,
    Group,
    Host,
    Resource,
    StoragePool,
    fit,
    host_fit,
    product_quantity,
)

#: Enough examples to find a counter-example quickly, without a per-example deadline on a busy CI box.
PROPERTY = settings(max_examples=120, deadline=None)

limits = st.one_of(st.none(), st.integers(1, 100_000))


@st.composite
def resources(draw: st.DrawFn) -> Resource:
    limit = draw(limits)
    free = draw(st.integers(-10, limit if limit is not None else 100_000))
    return Resource(limit=limit, free=free)


@st.composite
def pools(draw: st.DrawFn, index: int = 0) -> StoragePool:
    return StoragePool(
        id=str(index),
        name=f"p{index}",
        type_code=draw(st.integers(0, 3)),
        enabled=draw(st.booleans()),
        space=draw(resources()),
        local=index == 0,
    )


@st.composite
def hosts(draw: st.DrawFn, index: int = 0) -> Host:
    count = draw(st.integers(1, 4))
    return Host(
        id=str(index),
        name=f"h{index}",
        memory_mb=draw(resources()),
        cpu_cores=draw(resources()),
        pools=tuple(draw(pools(i)) for i in range(count)),
        servers=draw(st.one_of(st.none(), resources())),
        ipv4_free=draw(st.one_of(st.none(), st.integers(-1, 500))),
        ineligible=draw(st.sampled_from([None, None, None, "disabled"])),
    )


@st.composite
def groups(draw: st.DrawFn, gid: int = 0) -> Group:
    n = draw(st.integers(0, 4))
    return Group(id=str(gid), hosts=tuple(draw(hosts(i)) for i in range(n)))


@st.composite
def worlds(draw: st.DrawFn) -> list[Group]:
    return [draw(groups(i)) for i in range(draw(st.integers(1, 3)))]


footprints = st.builds(
    Footprint,
    memory_mb=st.integers(0, 16384),
    cpu_cores=st.integers(0, 16),
    storage_gb=st.integers(0, 500),
    storage_type=st.integers(0, 3),
    enabled=st.just(True),
)
buffers = st.floats(0, 100, allow_nan=False)
per_server = st.integers(1, 4)


def _lower(resource: Resource, by: int) -> Resource:
    return dataclasses.replace(resource, free=resource.free - by)


@st.composite
def one_resource_falls(draw: st.DrawFn) -> tuple[list[Group], list[Group]]:
    """A world and the same world with exactly one free amount lowered somewhere."""
    world = draw(worlds())
    candidates = [(gi, hi) for gi, g in enumerate(world) for hi in range(len(g.hosts))]
    if not candidates:
        return world, world
    gi, hi = draw(st.sampled_from(candidates))
    host = world[gi].hosts[hi]
    by = draw(st.integers(1, 5000))
    what = draw(st.sampled_from(["memory", "cpu", "pool", "servers", "ipv4"]))
    if what == "memory":
        changed = dataclasses.replace(host, memory_mb=_lower(host.memory_mb, by))
    elif what == "cpu":
        changed = dataclasses.replace(host, cpu_cores=_lower(host.cpu_cores, by))
    elif what == "pool":
        pi = draw(st.integers(0, len(host.pools) - 1))
        new_pools = list(host.pools)
        new_pools[pi] = dataclasses.replace(new_pools[pi], space=_lower(new_pools[pi].space, by))
        changed = dataclasses.replace(host, pools=tuple(new_pools))
    elif what == "servers":
        servers = host.servers or Resource(limit=100, free=100)
        changed = dataclasses.replace(host, servers=_lower(servers, by))
        host = dataclasses.replace(host, servers=servers)
    else:
        ipv4 = host.ipv4_free if host.ipv4_free is not None else 500
        changed = dataclasses.replace(host, ipv4_free=ipv4 - by)
        host = dataclasses.replace(host, ipv4_free=ipv4)

    def with_host(h: Host) -> list[Group]:
        out = list(world)
        hs = list(out[gi].hosts)
        hs[hi] = h
        out[gi] = dataclasses.replace(out[gi], hosts=tuple(hs))
        return out

    return with_host(host), with_host(changed)


@PROPERTY
@given(one_resource_falls(), footprints, buffers, per_server)
def test_quantity_never_rises_when_a_free_resource_falls(
    pair: tuple[list[Group], list[Group]], fp: Footprint, buffer: float, ipv4: int
) -> None:
    before, after = pair
    q_before = product_quantity(fp, before, buffer_pct=buffer, ipv4_per_server=ipv4).quantity
    q_after = product_quantity(fp, after, buffer_pct=buffer, ipv4_per_server=ipv4).quantity
    assert 0 <= q_after <= q_before


@PROPERTY
@given(worlds(), footprints, buffers, buffers, per_server)
def test_a_bigger_buffer_never_raises_quantity(
    world: list[Group], fp: Footprint, b1: float, b2: float, ipv4: int
) -> None:
    low, high = sorted((b1, b2))
    q_low = product_quantity(fp, world, buffer_pct=low, ipv4_per_server=ipv4).quantity
    q_high = product_quantity(fp, world, buffer_pct=high, ipv4_per_server=ipv4).quantity
    assert q_low >= q_high
    assert (
        product_quantity(fp, world, buffer_pct=0).quantity
        >= product_quantity(fp, world, buffer_pct=10).quantity
    )


@PROPERTY
@given(hosts(), footprints, buffers)
def test_unlimited_resources_never_bind(host: Host, fp: Footprint, buffer: float) -> None:
    result = host_fit(host, fp, buffer)
    if host.ineligible is not None:
        assert result.quantity == 0
        return
    unlimited = {
        "memory": host.memory_mb.unlimited,
        "cpu": host.cpu_cores.unlimited,
        "servers": host.servers is None or host.servers.unlimited,
    }
    for name, is_unlimited in unlimited.items():
        if is_unlimited:
            assert result.fits[name] is None
            assert result.binding != name
    # Lifting a cap never lowers what fits.
    freed = dataclasses.replace(host, memory_mb=Resource(limit=None, free=0))
    assert host_fit(freed, fp, buffer).quantity >= result.quantity


@PROPERTY
@given(hosts(), footprints.filter(lambda f: f.storage_type > 0 and f.storage_gb > 0), buffers)
def test_storage_type_code_picks_the_best_enabled_pool(host: Host, fp: Footprint, buffer: float) -> None:
    host = dataclasses.replace(host, ineligible=None)
    result = host_fit(host, fp, buffer)
    candidates = [p for p in host.pools if p.type_code == fp.storage_type and p.enabled]
    fits = [fit(p.space, fp.storage_gb, buffer) for p in candidates]
    if not candidates:
        assert result.fits["storage"] == 0
    elif any(f is None for f in fits):
        assert result.fits["storage"] is None
    else:
        assert result.fits["storage"] == max(f for f in fits if f is not None)


@PROPERTY
@given(groups(), footprints, buffers, per_server, st.integers(2, 4))
def test_ipv4_is_never_summed(group: Group, fp: Footprint, buffer: float, ipv4: int, copies: int) -> None:
    single = product_quantity(fp, [group], buffer_pct=buffer, ipv4_per_server=ipv4)
    reports = [h.ipv4_free for h in group.hosts if h.ineligible is None and h.ipv4_free is not None]
    if reports:
        assert single.quantity <= max(0, max(reports)) // ipv4
    # Repeating the hosts multiplies their capacity but not the shared pool.
    many = dataclasses.replace(group, hosts=group.hosts * copies)
    repeated = product_quantity(fp, [many], buffer_pct=buffer, ipv4_per_server=ipv4)
    if reports:
        assert repeated.quantity <= max(0, max(reports)) // ipv4
    g = repeated.groups[0]
    assert g.quantity <= g.hosts_total


@PROPERTY
@given(worlds(), footprints, buffers)
def test_product_is_the_sum_of_its_groups(world: list[Group], fp: Footprint, buffer: float) -> None:
    result = product_quantity(fp, world, buffer_pct=buffer)
    assert result.quantity == sum(g.quantity for g in result.groups)
    assert product_quantity(dataclasses.replace(fp, enabled=False), world).quantity == 0
