"""Early wake-up of idle workers when a job is queued.

Polling the jobs table is the source of truth; wake-ups only cut the latency between enqueue and
claim. So every failure here (Redis down, a dropped LISTEN connection) is logged and otherwise
ignored: workers keep polling and reconnect in the background.

Two channels, used together when both exist:

* PostgreSQL ``NOTIFY`` sent inside the enqueue transaction, delivered on commit (so a worker is never
  woken for a job it cannot see yet);
* Redis pub/sub, published after commit, when ``settings.redis_url`` is set (workers on SQLite never
  need it since they share one machine, but it works there too).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vpsbridge.logs import get_logger

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

CHANNEL = "vpsbridge_jobs"
REDIS_CHANNEL = "vpsbridge:jobs"
_PUBLISHER = "jobs.wakeup.redis"

log = get_logger(__name__)


async def pg_notify(session: AsyncSession) -> None:
    """Queue a NOTIFY in the caller's PostgreSQL transaction."""
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


async def publish(app: AppContext) -> None:
    """Publish a wake-up on Redis when configured; never raises."""
    url = app.settings.redis_url
    if not url:
        return
    try:
        import redis.asyncio as aioredis

        client: Any = app.extras.get(_PUBLISHER)
        if client is None:
            client = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            app.extras[_PUBLISHER] = client
        await client.publish(REDIS_CHANNEL, b"1")
    except Exception as exc:
        log.warning("job wake-up not published on Redis; workers will poll", error=str(exc))


async def close_publisher(app: AppContext) -> None:
    client = app.extras.pop(_PUBLISHER, None)
    if client is not None:
        with contextlib.suppress(Exception):
            await client.aclose()


def _asyncpg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


class Listener:
    """Sets ``event`` whenever a wake-up arrives on any configured channel."""

    def __init__(self, app: AppContext, event: asyncio.Event, *, retry_seconds: float = 5.0):
        self.app = app
        self.event = event
        self.retry_seconds = retry_seconds
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self.app.db.is_sqlite:
            self._tasks.append(asyncio.create_task(self._pg_loop(), name="wakeup-pg"))
        if self.app.settings.redis_url:
            self._tasks.append(asyncio.create_task(self._redis_loop(), name="wakeup-redis"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _pg_loop(self) -> None:
        import asyncpg

        dsn = _asyncpg_dsn(self.app.db.url)
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda *_a: self.event.set())
                await lost.wait()
                log.warning("PostgreSQL LISTEN connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("PostgreSQL LISTEN unavailable; workers poll", error=str(exc))
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(self.retry_seconds)

    async def _redis_loop(self) -> None:
        import redis.asyncio as aioredis

        url = self.app.settings.redis_url
        assert url is not None
        while True:
            client: Any = None
            try:
                client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
                pubsub = client.pubsub()
                await pubsub.subscribe(REDIS_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Redis wake-up channel unavailable; workers poll", error=str(exc))
            finally:
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.aclose()
            await asyncio.sleep(self.retry_seconds)
