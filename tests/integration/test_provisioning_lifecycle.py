"""The service lifecycle on the dummy platform, on SQLite and PostgreSQL: create (idempotent, also under
concurrency), build with captured credentials, suspend/unsuspend, change package, password reset,
power, rename, terminate with a delay, and the events billing listens to."""

from __future__ import annotations

import asyncio
import time

import pytest
from provisioning_support import ACTOR, World, world
from sqlalchemy import func, select

from vpsbridge.platforms.dummy.cloud import DummyCloud
from vpsbridge.services.errors import Conflict, Invalid
from vpsbridge.services.provisioning import (
    by_billing,
    change_package,
    create_service,
    get_service,
    list_services,
    power_service,
    rename_service,
    reset_password,
    service_credentials,
    suspend_service,
    terminate_service,
    unsuspend_service,
)
from vpsbridge.store.models import Server, Service

__all__ = ["world"]


async def _provisioned(w: World, billing_id: str, **extra: object) -> int:
    out = await create_service(w.app, w.create_request(billing_id, **extra), ACTOR)
    await w.drain()
    return out.id


async def test_create_answers_fast_then_builds_and_hands_over_credentials(world: World) -> None:
    started = time.monotonic()
    out = await create_service(world.app, world.create_request("1001"), ACTOR)
    assert time.monotonic() - started < 5
    assert out.status == "provisioning"
    assert out.server is not None
    assert out.server.external_id is not None
    assert out.server.ipv4, "addresses are reserved on the platform by the create"
    assert world.cloud.calls.count("create_server") == 1

    await world.drain()
    done = await get_service(world.app, by_billing("1001"))
    assert done.status == "active"
    assert done.last_error is None
    assert done.server is not None
    assert done.server.has_credentials
    creds = await service_credentials(world.app, done.id)
    upstream = world.cloud.servers[int(done.server.external_id or 0)]
    assert creds.username == "root"
    assert creds.password == upstream.password  # the password the build really set
    assert creds.ipv4 == upstream.ipv4
    assert upstream.os_template == "debian-12"
    assert upstream.state == "running"
    # The password never leaves through the listing.
    assert creds.password not in (await get_service(world.app, done.id)).model_dump_json()
    provisioned = [e for e in world.events.seen if e.kind == "provisioned"]
    assert len(provisioned) == 1
    assert provisioned[0].billing_service_id == "1001"
    assert provisioned[0].details["ipv4"] == upstream.ipv4
    assert "password" not in provisioned[0].details


async def test_repeated_create_returns_the_same_service_and_one_server(world: World) -> None:
    first = await create_service(world.app, world.create_request("1002"), ACTOR)
    again = await create_service(world.app, world.create_request("1002"), ACTOR)
    assert again.id == first.id
    await world.drain()
    third = await create_service(world.app, world.create_request("1002"), ACTOR)
    assert third.id == first.id
    assert third.status == "active"
    assert world.cloud.calls.count("create_server") == 1
    assert len(world.cloud.servers) == 1


async def test_parallel_creates_for_one_billing_service_make_one_server(world: World) -> None:
    results = await asyncio.gather(
        *(create_service(world.app, world.create_request("1003"), ACTOR) for _ in range(6)),
        return_exceptions=True,
    )
    ids = {r.id for r in results if not isinstance(r, BaseException)}
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, Conflict) for e in errors), errors
    assert len(ids) == 1
    assert world.cloud.calls.count("create_server") == 1
    async with world.app.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Service)) == 1
        assert await session.scalar(select(func.count()).select_from(Server)) == 1
    await world.drain()
    assert (await get_service(world.app, by_billing("1003"))).status == "active"


async def test_different_services_of_one_client_in_parallel(world: World) -> None:
    results = await asyncio.gather(
        *(create_service(world.app, world.create_request(f"20{i}"), ACTOR) for i in range(4))
    )
    assert len({r.id for r in results}) == 4
    await world.drain()
    assert {s.status for s in await list_services(world.app, client_id="501")} == {"active"}
    assert len(world.cloud.servers) == 4


async def test_unknown_product_option_is_a_clear_error_and_records_nothing(world: World) -> None:
    with pytest.raises(Invalid) as caught:
        await create_service(
            world.app, world.create_request("1004", options={"RAM": "2|2 GB", "Colour": "blue"}), ACTOR
        )
    assert "Colour" in str(caught.value)
    assert "ignored_options" in str(caught.value)
    assert caught.value.field == "options"
    assert await list_services(world.app) == []
    assert "create_server" not in world.cloud.calls


async def test_options_override_the_plan(world: World) -> None:
    out = await create_service(
        world.app,
        world.create_request(
            "1005", options={"RAM|Memory": "2|2 GB", "CPU Cores": "2", "System Disk": "30|30 GB"}
        ),
        ACTOR,
    )
    upstream = world.cloud.servers[int(out.server.external_id or 0)]  # type: ignore[union-attr]
    assert (upstream.memory_mb, upstream.cpu_cores, upstream.disk_gb) == (2048, 2, 30)


async def test_suspend_unsuspend_and_power(world: World) -> None:
    sid = await _provisioned(world, "1006")
    upstream = next(iter(world.cloud.servers.values()))
    suspended = await suspend_service(world.app, sid, ACTOR, reason="overdue")
    assert suspended.outcome == "done"
    assert suspended.service.status == "suspended"
    assert (await suspend_service(world.app, sid, ACTOR)).outcome == "unchanged"
    with pytest.raises(Conflict, match="suspended"):
        await power_service(world.app, sid, "restart", ACTOR)
    await world.drain()
    assert upstream.suspended
    back = await unsuspend_service(world.app, sid, ACTOR)
    assert back.service.status == "active"
    await world.drain()
    assert not upstream.suspended
    assert upstream.state == "running"
    power = await power_service(world.app, sid, "stop", ACTOR)
    assert power.outcome == "accepted"
    await world.drain()
    assert upstream.state == "stopped"
    assert (await get_service(world.app, sid)).server.state == "stopped"  # type: ignore[union-attr]


async def test_busy_server_is_a_readable_conflict(world: World) -> None:
    sid = await _provisioned(world, "1007")
    await power_service(world.app, sid, "restart", ACTOR)  # leaves a running task on the server
    with pytest.raises(Conflict, match="busy"):
        await suspend_service(world.app, sid, ACTOR)
    assert (await get_service(world.app, sid)).status == "active"


async def test_reset_password_rename_and_change_package(world: World) -> None:
    sid = await _provisioned(world, "1008")
    before = (await service_credentials(world.app, sid)).password
    creds = await reset_password(world.app, sid, ACTOR)
    assert creds.password != before
    upstream = next(iter(world.cloud.servers.values()))
    assert upstream.password == creds.password
    assert (await service_credentials(world.app, sid)).password == creds.password
    assert world.events.kinds(sid)[-1] == "password_reset"
    assert creds.password not in str(world.events.seen[-1].details)

    renamed = await rename_service(world.app, sid, ACTOR, hostname="new.example.net")
    assert renamed.service.server.hostname == "new.example.net"  # type: ignore[union-attr]
    assert upstream.hostname == "new.example.net"

    changed = await change_package(world.app, sid, {"options": {"RAM": "4", "System Disk": "40"}}, ACTOR)
    assert changed.outcome == "accepted"
    assert changed.job_id is not None
    assert changed.service.options == {"RAM": "4", "System Disk": "40"}
    await world.drain()
    assert (upstream.memory_mb, upstream.disk_gb) == (4096, 40)
    assert "package_changed" in world.events.kinds(sid)
    # A disk cannot shrink: the platform's refusal is a readable error, nothing recorded.
    with pytest.raises(Exception, match="shrink"):
        await change_package(world.app, sid, {"options": {"System Disk": "10"}}, ACTOR)
    assert (await get_service(world.app, sid)).options == {"RAM": "4", "System Disk": "40"}
    with pytest.raises(Invalid, match="Colour"):
        await change_package(world.app, sid, {"options": {"Colour": "red"}}, ACTOR)


async def test_terminate_with_delay_revokes_access_first_then_deletes(world: World) -> None:
    sid = await _provisioned(world, "1009")
    upstream_id = next(iter(world.cloud.servers))
    out = await terminate_service(world.app, sid, ACTOR, delay_seconds=30)  # 0.3 s at time_scale 0.01
    assert out.outcome == "queued"
    assert out.service.status == "terminating"
    again = await terminate_service(world.app, sid, ACTOR)
    assert again.outcome == "unchanged"
    assert again.job_id == out.job_id
    worker_run = asyncio.create_task(world.drain())
    await asyncio.sleep(0.15)
    world.cloud.advance()  # the in-memory cloud applies due task effects when looked at
    assert world.cloud.servers[upstream_id].suspended, "access is revoked before the delay ends"
    assert (await get_service(world.app, sid)).status == "terminating"
    await worker_run
    await world.drain()
    done = await get_service(world.app, sid)
    assert done.status == "terminated"
    assert done.server is not None
    assert done.server.external_id is None
    assert not done.server.has_credentials
    assert upstream_id not in world.cloud.servers
    assert world.events.kinds(sid)[-1] == "terminated"


async def test_terminate_of_a_server_already_gone_is_success(world: World) -> None:
    sid = await _provisioned(world, "1010")
    world.cloud.servers.clear()  # deleted on the platform behind our back
    await terminate_service(world.app, sid, ACTOR)
    await world.drain()
    assert (await get_service(world.app, sid)).status == "terminated"
    assert world.events.seen[-1].details["server_missing"] is True


async def test_events_are_delivered_at_least_once_without_repeating_successful_listeners(
    world: World,
) -> None:
    calls: list[str] = []

    async def steady(ctx: object, event: object) -> None:
        calls.append(event.kind)

    from vpsbridge.services.provisioning import on_service_event, remove_service_listener

    on_service_event("provisioned", steady)
    world.events.fail_next = 2
    try:
        sid = await _provisioned(world, "1011")
    finally:
        remove_service_listener("provisioned", steady)
    assert calls == ["provisioned"], "the listener that succeeded is not called again on retry"
    assert world.events.kinds(sid) == ["provisioned"]
    assert (await get_service(world.app, sid)).status == "active"


async def test_create_again_after_termination_makes_a_new_server(world: World) -> None:
    sid = await _provisioned(world, "1012")
    await terminate_service(world.app, sid, ACTOR)
    await world.drain()
    again = await create_service(world.app, world.create_request("1012"), ACTOR)
    assert again.id == sid
    assert again.status == "provisioning"
    await world.drain()
    assert (await get_service(world.app, sid)).status == "active"
    assert len(world.cloud.servers) == 1
    assert world.cloud.calls.count("create_server") == 2


def test_clouds_do_not_leak_between_tests() -> None:
    assert all(not url.startswith("dummy://prov-") for url in DummyCloud._clouds)
