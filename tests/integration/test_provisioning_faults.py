"""Fault injection on the dummy platform: no half-created server is left unrecorded, no duplicate is
created, an unknown upstream answer never becomes a destructive decision, every failure reads well."""

from __future__ import annotations

import pytest
from provisioning_support import ACTOR, World, world
from sqlalchemy import select

from vpsbridge.http.errors import UpstreamTimeout, UpstreamUnavailable
from vpsbridge.platforms.errors import InvalidRequest
from vpsbridge.services.errors import Conflict, UpstreamError
from vpsbridge.services.provisioning import (
    by_billing,
    create_service,
    get_service,
    resolve_unknown_create,
    terminate_service,
)
from vpsbridge.store.models import IpAddress, IpPool, Server

__all__ = ["world"]


async def test_create_timeout_is_unknown_never_retried_blindly_then_resolved(world: World) -> None:
    world.cloud.inject_fault("create_server", UpstreamTimeout("dummy: read timed out"))
    with pytest.raises(UpstreamError, match="unknown") as caught:
        await create_service(world.app, world.create_request("3001"), ACTOR)
    assert "did not confirm" in str(caught.value)
    service = await get_service(world.app, by_billing("3001"))
    assert service.status == "unknown"
    assert service.server is not None
    assert service.server.state == "create_unknown"
    # WHMCS retries: no second create reaches the platform while the outcome is unknown.
    with pytest.raises(Conflict, match="resolve"):
        await create_service(world.app, world.create_request("3001"), ACTOR)
    assert world.cloud.calls.count("create_server") == 1
    # The dummy platform can list a client's servers: the job confirms none was created.
    await world.drain()
    after = await get_service(world.app, by_billing("3001"))
    assert after.status == "failed"
    assert "confirms no server" in (after.last_error or "")
    assert "build_failed" in world.events.kinds(after.id)
    again = await create_service(world.app, world.create_request("3001"), ACTOR)
    assert again.status == "provisioning"
    await world.drain()
    assert (await get_service(world.app, again.id)).status == "active"
    assert len(world.cloud.servers) == 1


async def test_unknown_create_is_adopted_when_the_server_did_appear(world: World) -> None:
    world.cloud.inject_fault("create_server", UpstreamUnavailable("dummy: 502 Bad Gateway", status=502))
    with pytest.raises(UpstreamError):
        await create_service(world.app, world.create_request("3002"), ACTOR)
    # The platform did create it after all (the answer was lost on the way back).
    from vpsbridge.platforms.models import ServerSpec

    world.cloud.new_server(
        ServerSpec(hostname="3002.example.net", cpu_cores=1, memory_mb=1024, disk_gb=20, owner="501")
    )
    await world.drain()
    service = await get_service(world.app, by_billing("3002"))
    assert service.status == "active"
    assert service.server is not None
    assert service.server.external_id == str(next(iter(world.cloud.servers)))
    assert len(world.cloud.servers) == 1
    assert world.cloud.calls.count("create_server") == 1


async def test_operator_resolves_an_unknown_create(world: World) -> None:
    world.cloud.inject_fault("create_server", UpstreamTimeout("dummy: timed out"))
    with pytest.raises(UpstreamError):
        await create_service(world.app, world.create_request("3003"), ACTOR)
    service = await get_service(world.app, by_billing("3003"))
    resolved = await resolve_unknown_create(world.app, service.id, ACTOR, external_id=None)
    assert resolved.status == "failed"
    assert resolved.server is None
    with pytest.raises(Conflict, match="not unknown"):
        await resolve_unknown_create(world.app, service.id, ACTOR, external_id="5")


async def test_refused_create_leaves_nothing_and_may_be_retried(world: World) -> None:
    with pytest.raises(UpstreamError, match="refused to create") as caught:
        await create_service(world.app, world.create_request("3004", options={"RAM": "65536"}), ACTOR)
    assert "no node" in str(caught.value)
    failed = await get_service(world.app, by_billing("3004"))
    assert failed.status == "failed"
    assert failed.server is None
    async with world.app.db.session() as session:
        assert (await session.execute(select(Server))).first() is None
    ok = await create_service(world.app, world.create_request("3004"), ACTOR)
    assert ok.status == "provisioning"


async def test_transient_build_failure_is_retried(world: World) -> None:
    world.cloud.inject_fault("build", UpstreamUnavailable("dummy: 503", status=503), times=2)
    out = await create_service(world.app, world.create_request("3005"), ACTOR)
    await world.drain()
    done = await get_service(world.app, out.id)
    assert done.status == "active"
    assert world.cloud.calls.count("build") == 3


async def test_locked_server_is_waited_for_not_counted(world: World) -> None:
    from vpsbridge.platforms.errors import ServerLocked

    world.cloud.inject_fault("build", ServerLocked("dummy: locked", status=409), times=5)
    out = await create_service(world.app, world.create_request("3006"), ACTOR)
    await world.drain(timeout=60)
    assert (await get_service(world.app, out.id)).status == "active"


async def test_refused_build_fails_readably_and_a_retry_rebuilds_the_same_server(world: World) -> None:
    world.cloud.inject_fault("build", InvalidRequest("dummy: template is broken", status=422))
    out = await create_service(world.app, world.create_request("3007"), ACTOR)
    await world.drain()
    failed = await get_service(world.app, out.id)
    assert failed.status == "failed"
    assert "refused the build" in (failed.last_error or "")
    assert "template is broken" in (failed.last_error or "")
    assert world.events.kinds(out.id) == ["build_failed"]
    again = await create_service(world.app, world.create_request("3007"), ACTOR)
    assert again.server is not None
    assert again.server.id == failed.server.id  # type: ignore[union-attr]
    await world.drain()
    assert (await get_service(world.app, out.id)).status == "active"
    assert world.cloud.calls.count("create_server") == 1, "no second server for the same service"
    assert len(world.cloud.servers) == 1


async def test_terminate_never_treats_unknown_as_deleted(world: World) -> None:
    out = await create_service(world.app, world.create_request("3008"), ACTOR)
    await world.drain()
    async with world.app.db.session() as session:
        pool = IpPool(name="p", network="198.51.100.0/24")
        session.add(pool)
        await session.flush()
        session.add(IpAddress(pool_id=pool.id, address="198.51.100.7", server_id=out.server.id))  # type: ignore[union-attr]
    world.cloud.inject_fault(
        "terminate", UpstreamUnavailable("dummy: 504 Gateway Timeout", status=504), times=50
    )
    await terminate_service(world.app, out.id, ACTOR)
    await world.drain(timeout=60)
    service = await get_service(world.app, out.id)
    assert service.status == "error_terminate"
    assert "504" in (service.last_error or "")
    assert service.server is not None
    assert service.server.external_id is not None, "the server is not forgotten on a timeout"
    async with world.app.db.session() as session:
        kept = (await session.execute(select(IpAddress))).scalars().all()
    assert [a.address for a in kept] == ["198.51.100.7"], "addresses stay allocated"
    assert world.events.kinds(out.id)[-1] == "terminate_failed"
    assert len(world.cloud.servers) == 1


async def test_terminate_releases_addresses_once_confirmed(world: World) -> None:
    out = await create_service(world.app, world.create_request("3009"), ACTOR)
    await world.drain()
    async with world.app.db.session() as session:
        pool = IpPool(name="p2", network="198.51.100.0/24")
        session.add(pool)
        await session.flush()
        session.add(IpAddress(pool_id=pool.id, address="198.51.100.8", server_id=out.server.id))  # type: ignore[union-attr]
    await terminate_service(world.app, out.id, ACTOR)
    await world.drain()
    assert (await get_service(world.app, out.id)).status == "terminated"
    async with world.app.db.session() as session:
        assert (await session.execute(select(IpAddress))).first() is None
