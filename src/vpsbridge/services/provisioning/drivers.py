"""Building the driver of a service's platform, for the lifecycle services and workflows.

Credentials are decrypted only here, just before the driver is built, and the driver is closed when
the caller's block ends. Tests (and the demo) reach in-process simulators by putting an httpx2
transport into ``ctx.extras[EXTRAS_TRANSPORTS]``, keyed by platform URL (or by platform type).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vpsbridge.platforms import registry
from vpsbridge.platforms.base import Platform as Driver
from vpsbridge.services.errors import Invalid, NotFound
from vpsbridge.store.models import Platform

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

#: ``ctx.extras`` key: platform URL or type -> httpx2 transport.
EXTRAS_TRANSPORTS = "platform_transports"


@dataclass(frozen=True)
class PlatformConfig:
    """What is needed to build a driver, read once from the platform row."""

    id: int
    name: str
    type: str
    url: str
    credentials: dict[str, Any]
    verify_tls: bool
    ca_bundle: str | None
    settings: dict[str, Any]


async def platform_config(ctx: AppContext, platform_id: int) -> PlatformConfig:
    async with ctx.db.session() as session:
        row = await session.get(Platform, platform_id)
        if row is None:
            raise NotFound(f"platform {platform_id} no longer exists")
        if not row.enabled:
            raise Invalid(f"platform {row.name!r} is disabled; enable it before changing its servers")
        return PlatformConfig(
            id=row.id,
            name=row.name,
            type=row.type,
            url=row.url,
            credentials=ctx.secrets.decrypt_json(row.credentials_enc) if row.credentials_enc else {},
            verify_tls=row.verify_tls,
            ca_bundle=row.ca_bundle,
            settings=dict(row.settings or {}),
        )


def build_driver(ctx: AppContext, config: PlatformConfig) -> Driver:
    transports = ctx.extras.get(EXTRAS_TRANSPORTS) or {}
    return registry.create_driver(
        config.type,
        url=config.url,
        credentials=config.credentials,
        verify_tls=config.verify_tls,
        ca_bundle=config.ca_bundle,
        recorder=ctx.extras.get("upstream_recorder"),
        transport=transports.get(config.url) or transports.get(config.type),
        settings=config.settings,
    )


@contextlib.asynccontextmanager
async def open_driver(ctx: AppContext, platform_id: int) -> AsyncIterator[tuple[Driver, PlatformConfig]]:
    """The driver of platform ``platform_id`` and its configuration, closed afterwards."""
    config = await platform_config(ctx, platform_id)
    driver = build_driver(ctx, config)
    try:
        yield driver, config
    finally:
        await driver.aclose()
