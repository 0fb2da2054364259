"""Platforms and DNS providers: CRUD, audit rows, credentials encrypted and never returned."""

from __future__ import annotations

import asyncio
import json

import pytest
from catalog_support import ACTOR, audit_rows, ctx, raw_value

from vpsbridge.platforms import registry
from vpsbridge.services import dns_providers, platforms, products
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.store.models import DnsZone

__all__ = ["ctx"]

SECRET = "pve-token-9f8e7d6c5b4a"


def _platform(**over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "pve-fra",
        "type": "dummy",
        "url": "dummy://pve-fra",
        "credentials": {"token_id": "root@pam!vpsb", "token_secret": SECRET},
        "settings": {"node": "fra1"},
    }
    data.update(over)
    return data


async def test_platform_crud_with_audit_and_encrypted_credentials(ctx: AppContext) -> None:
    created = await platforms.create_platform(ctx, _platform(), ACTOR)
    assert created.has_credentials
    assert SECRET not in created.model_dump_json()

    stored = await raw_value(ctx, "platforms", "credentials_enc", created.id)
    assert SECRET not in stored
    assert ctx.secrets.decrypt_json(stored)["token_secret"] == SECRET
    assert await platforms.platform_credentials(ctx, "pve-fra") == {
        "token_id": "root@pam!vpsb",
        "token_secret": SECRET,
    }

    assert (await platforms.get_platform(ctx, created.id)).name == "pve-fra"
    assert (await platforms.get_platform(ctx, "pve-fra")).id == created.id
    assert (await platforms.get_platform(ctx, str(created.id))).id == created.id
    assert [p.name for p in await platforms.list_platforms(ctx)] == ["pve-fra"]

    updated = await platforms.update_platform(ctx, "pve-fra", {"url": "dummy://pve-fra-2"}, ACTOR)
    assert updated.url == "dummy://pve-fra-2"
    assert updated.has_credentials  # untouched when not given
    cleared = await platforms.update_platform(ctx, created.id, {"credentials": None}, ACTOR)
    assert not cleared.has_credentials

    await platforms.delete_platform(ctx, "pve-fra", ACTOR)
    with pytest.raises(NotFound, match="pve-fra"):
        await platforms.get_platform(ctx, "pve-fra")

    rows = await audit_rows(ctx)
    assert [r.action for r in rows] == [
        "platform.create",
        "platform.update",
        "platform.update",
        "platform.delete",
    ]
    assert {(r.actor_type, r.actor_id, r.ip, r.object_id) for r in rows} == {
        ("admin", "alice", "198.51.100.7", str(created.id))
    }
    assert rows[1].details["fields"] == ["url"]
    assert rows[2].details["fields"] == ["credentials"]
    for row in rows:
        assert SECRET not in json.dumps(row.details)


async def test_platform_input_errors(ctx: AppContext) -> None:
    with pytest.raises(Invalid) as unknown:
        await platforms.create_platform(ctx, _platform(type="vmware"), ACTOR)
    assert unknown.value.field == "type"
    assert f"known types: {', '.join(registry.driver_types())}" in str(unknown.value)

    with pytest.raises(Invalid) as missing:
        await platforms.create_platform(ctx, {"name": "x", "type": "dummy"}, ACTOR)
    assert missing.value.field == "url"

    with pytest.raises(Invalid) as digits:
        await platforms.create_platform(ctx, _platform(name="42"), ACTOR)
    assert digits.value.field == "name"

    await platforms.create_platform(ctx, _platform(), ACTOR)
    with pytest.raises(Conflict, match="already exists"):
        await platforms.create_platform(ctx, _platform(), ACTOR)
    with pytest.raises(Invalid) as empty:
        await platforms.update_platform(ctx, "pve-fra", {"url": None}, ACTOR)
    assert empty.value.field == "url"
    # Failed calls leave no audit rows behind.
    assert [r.action for r in await audit_rows(ctx)] == ["platform.create"]


async def test_platform_delete_refused_while_a_product_uses_it(ctx: AppContext) -> None:
    platform = await platforms.create_platform(ctx, _platform(), ACTOR)
    product = await products.create_product(ctx, {"name": "VPS S", "platform": "pve-fra"}, ACTOR)
    with pytest.raises(Conflict, match="1 product"):
        await platforms.delete_platform(ctx, platform.id, ACTOR)
    await products.delete_product(ctx, product.id, ACTOR)
    await platforms.delete_platform(ctx, platform.id, ACTOR)
    assert await platforms.list_platforms(ctx) == []


async def test_dns_provider_crud_and_zone_conflict(ctx: AppContext) -> None:
    secret = "pdns-api-key-31337"
    created = await dns_providers.create_dns_provider(
        ctx,
        {
            "name": "pdns",
            "type": "powerdns",
            "url": "http://127.0.0.1:8081",
            "credentials": {"api_key": secret},
        },
        ACTOR,
    )
    assert created.has_credentials
    assert created.zone_count == 0
    assert secret not in created.model_dump_json()
    stored = await raw_value(ctx, "dns_providers", "credentials_enc", created.id)
    assert secret not in stored
    assert await dns_providers.dns_provider_credentials(ctx, "pdns") == {"api_key": secret}

    renamed = await dns_providers.update_dns_provider(ctx, "pdns", {"name": "pdns-main"}, ACTOR)
    assert renamed.name == "pdns-main"
    assert [p.name for p in await dns_providers.list_dns_providers(ctx)] == ["pdns-main"]

    async with ctx.db.session() as session:
        session.add(DnsZone(provider_id=created.id, name="example.net."))
    assert (await dns_providers.get_dns_provider(ctx, created.id)).zone_count == 1
    with pytest.raises(Conflict, match="1 zone"):
        await dns_providers.delete_dns_provider(ctx, "pdns-main", ACTOR)

    async with ctx.db.session() as session:
        zone = (await session.execute(DnsZone.__table__.select())).first()
        assert zone is not None
        await session.execute(DnsZone.__table__.delete())
    await dns_providers.delete_dns_provider(ctx, "pdns-main", ACTOR)
    actions = [r.action for r in await audit_rows(ctx)]
    assert actions == ["dns_provider.create", "dns_provider.update", "dns_provider.delete"]
    for row in await audit_rows(ctx):
        assert secret not in json.dumps(row.details)


async def test_platform_connection_test_names_missing_scopes(ctx: AppContext) -> None:
    await platforms.create_platform(
        ctx,
        _platform(
            name="limited", url="dummy://limited", credentials={"token": "t", "scopes": ["servers:read"]}
        ),
        ACTOR,
    )
    report = await platforms.test_platform(ctx, "limited")
    assert report.ok is False
    assert "servers:write" in report.missing_scopes
    assert "servers:read" not in report.missing_scopes

    await platforms.create_platform(
        ctx, _platform(name="full", url="dummy://full", credentials={"token": "t"}), ACTOR
    )
    assert (await platforms.test_platform(ctx, "full")).ok is True

    await platforms.create_platform(ctx, _platform(name="rejected", credentials={"token": "invalid"}), ACTOR)
    rejected = await platforms.test_platform(ctx, "rejected")
    assert rejected.ok is False
    assert any(c.name == "authentication" and not c.ok for c in rejected.checks)


async def test_concurrent_creates_of_one_name_give_one_conflict(ctx: AppContext) -> None:
    """Both pre-checks may pass at once on PostgreSQL; the unique constraint still yields a Conflict."""
    results = await asyncio.gather(
        *(platforms.create_platform(ctx, _platform(), ACTOR) for _ in range(3)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, platforms.PlatformOut)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1
    assert len(conflicts) == 2, results
    assert [r.action for r in await audit_rows(ctx)] == ["platform.create"]
