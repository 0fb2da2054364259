"""The per-process application context: settings, database, cache and secret box.

Web, worker, CLI and demo all build exactly one :class:`AppContext` and hand it down; nothing reaches
for globals. Tests build their own with a throw-away database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vpsbridge.cache import Cache, create_cache
from vpsbridge.config import Settings
from vpsbridge.jobs.wakeup import close_publisher
from vpsbridge.services.upstream_log import EXTRAS_LOG, install_upstream_log
from vpsbridge.store.db import Database
from vpsbridge.store.secrets import SecretBox, load_keys


@dataclass
class AppContext:
    settings: Settings
    db: Database
    cache: Cache
    secrets: SecretBox
    #: Free slots for capability services that want one shared object per process.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def create(cls, settings: Settings, *, db: Database | None = None) -> AppContext:
        database = db or Database.from_settings(settings)
        cache = await create_cache(settings)
        ctx = cls(settings=settings, db=database, cache=cache, secrets=SecretBox(load_keys(settings)))
        # Every process records its upstream calls (admin console, failure journey); the log is
        # buffered, so installing it costs nothing until a client sends a request.
        install_upstream_log(ctx)
        return ctx

    async def close(self) -> None:
        """Flush what is still buffered, then release the cache and the database."""
        upstream_log = self.extras.get(EXTRAS_LOG)
        if upstream_log is not None:
            await upstream_log.close()
        await close_publisher(self)
        await self.cache.close()
        await self.db.dispose()
