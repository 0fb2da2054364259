"""IP pools: validation that names the field, usage counts from assignment rows, delete refusal."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_support import ACTOR, audit_rows, ctx

from vpsbridge.services import platforms, pools
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import Conflict, Invalid
from vpsbridge.store.models import IpAddress

__all__ = ["ctx"]


def _pool(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "fra-v4",
        "network": "192.0.2.0/24",
        "range_start": "192.0.2.10",
        "range_end": "192.0.2.19",
        "gateway": "192.0.2.1",
        "dns_servers": ["9.9.9.9", "2620:fe::fe"],
        "bridge": "vmbr0",
        "vlan": 120,
    }
    data.update(over)
    return data


async def test_pool_crud_and_usage(ctx: AppContext) -> None:
    await platforms.create_platform(ctx, {"name": "pve", "type": "dummy", "url": "dummy://pve"}, ACTOR)
    created = await pools.create_pool(ctx, _pool(platform="pve", scope="node1"), ACTOR)
    assert created.family == 4
    assert created.prefix_length == 24
    assert created.platform_name == "pve"
    assert (created.size, created.allocated, created.reserved, created.free) == (10, 0, 0, 10)

    async with ctx.db.session() as session:
        session.add_all(
            [
                IpAddress(pool_id=created.id, address="192.0.2.10", state="allocated"),
                IpAddress(pool_id=created.id, address="192.0.2.11", state="allocated"),
                IpAddress(pool_id=created.id, address="192.0.2.12", state="reserved"),
            ]
        )
    listed = await pools.list_pools(ctx)
    assert [(p.name, p.allocated, p.reserved, p.free) for p in listed] == [("fra-v4", 2, 1, 7)]

    updated = await pools.update_pool(ctx, "fra-v4", {"range_end": "192.0.2.50", "vlan": None}, ACTOR)
    assert updated.size == 41
    assert updated.vlan is None
    with pytest.raises(Conflict, match="outside"):
        await pools.update_pool(ctx, "fra-v4", {"range_start": "192.0.2.12"}, ACTOR)

    with pytest.raises(Conflict, match="3 assigned or reserved"):
        await pools.delete_pool(ctx, "fra-v4", ACTOR)
    async with ctx.db.session() as session:
        await session.execute(IpAddress.__table__.delete())
    await pools.delete_pool(ctx, created.id, ACTOR)
    assert await pools.list_pools(ctx) == []
    assert [r.action for r in await audit_rows(ctx) if r.object_type == "ip_pool"] == [
        "pool.create",
        "pool.update",
        "pool.delete",
    ]


async def test_ipv6_pool_derives_family_and_defaults(ctx: AppContext) -> None:
    created = await pools.create_pool(
        ctx, {"name": "fra-v6", "network": "2001:db8:100::/64", "gateway": "2001:db8:100::1"}, ACTOR
    )
    assert created.family == 6
    assert created.prefix_length == 64
    assert created.size == 2**64 - 2  # minus the subnet-router anycast address and the gateway
    wide = await pools.create_pool(
        ctx,
        {"name": "fra-sub", "network": "198.51.100.64/26", "prefix_length": 24, "gateway": "198.51.100.1"},
        ACTOR,
    )
    assert wide.gateway == "198.51.100.1"  # outside the pool, inside the on-link /24


@pytest.mark.parametrize(
    ("over", "field", "message"),
    [
        ({"network": "192.0.2.5/24"}, "network", "host bits"),
        ({"network": "192.0.2.0"}, "network", "prefix length"),
        ({"network": "not-a-net/24"}, "network", "CIDR"),
        ({"range_start": "192.0.3.1"}, "range_start", "outside"),
        ({"range_end": "2001:db8::1"}, "range_end", "IPv6"),
        ({"range_start": "192.0.2.30", "range_end": "192.0.2.20"}, "range_end", "before"),
        ({"gateway": "10.0.0.1"}, "gateway", "outside"),
        ({"gateway": "192.0.2.15"}, "gateway", "inside the assignable range"),
        ({"dns_servers": ["9.9.9.9", "dns.example"]}, "dns_servers.1", "not an IP"),
        ({"vlan": 4095}, "vlan", "4094"),
        ({"prefix_length": 33}, "prefix_length", "at most"),
        ({"prefix_length": 25}, "prefix_length", "narrower"),
        ({"name": "bad name"}, "name", "pattern"),
        ({"platform": "ghost"}, "platform", "ghost"),
    ],
)
async def test_invalid_pool_input_names_the_field(
    ctx: AppContext, over: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(Invalid) as exc:
        await pools.create_pool(ctx, _pool(**over), ACTOR)
    assert exc.value.field == field
    assert message in str(exc.value)
    assert await pools.list_pools(ctx) == []
    assert await audit_rows(ctx) == []
