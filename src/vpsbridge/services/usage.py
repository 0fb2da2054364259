"""Disk and bandwidth usage per service, read from the platforms once a day and kept for billing.

WHMCS shows four figures per service (``diskusage``, ``disklimit``, ``bwusage``, ``bwlimit``, all
in MB) and asks the module for them in its daily ``UsageUpdate``. Asking the platform for every
service at that moment would make the WHMCS cron wait on every panel, so the ``usage_sync`` task
collects them beforehand and :func:`billing_usage` answers from what was stored.

Figures are tri-state, per pair: a platform that does not answer (timeout, 5xx, no guest agent)
leaves the previous figure in place rather than writing 0, because a 0 in WHMCS looks like a
reset counter to clients and like free capacity to staff. A traffic limit of 0 upstream means
unmetered, which WHMCS also writes as 0.

The figures live in the service's bookkeeping (``services.lifecycle["usage"]``), not in its
configurable options: options are replayed to the platform on a package change.

Listeners registered with :func:`on_usage_collected` run after each collection (the billing
bridge's self-service auto top-off uses it); a failing listener is logged and counted, never fatal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from vpsbridge.logs import get_logger
from vpsbridge.platforms.models import ServerRef
from vpsbridge.services.provisioning.drivers import open_driver
from vpsbridge.store.models import Server, Service, utcnow

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

log = get_logger(__name__)

MB = 1024**2
COLUMNS = ("diskusage", "disklimit", "bwusage", "bwlimit")

UsageListener = Callable[["AppContext", "UsageRun"], Awaitable[None]]
_LISTENERS: list[UsageListener] = []


@dataclass
class UsageRun:
    """What one collection did: services read fully, partly (some figures unknown), or not at all."""

    services: int = 0
    complete: int = 0
    partial: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)
    listener_errors: int = 0


@dataclass(frozen=True)
class _Target:
    service_id: int
    billing_service_id: str | None
    platform_id: int
    ref: ServerRef


def on_usage_collected(fn: UsageListener) -> UsageListener:
    """Run ``fn(ctx, run)`` after every collection (idempotent registration)."""
    if fn not in _LISTENERS:
        _LISTENERS.append(fn)
    return fn


def remove_usage_listener(fn: UsageListener) -> None:
    if fn in _LISTENERS:
        _LISTENERS.remove(fn)


async def _targets(ctx: AppContext) -> list[_Target]:
    query = (
        select(Service.id, Service.billing_service_id, Server.platform_id, Server.external_id, Server.node)
        .join(Server, Server.id == Service.server_id)
        .where(Service.status == "active", Server.external_id.is_not(None))
        .order_by(Service.id)
    )
    async with ctx.db.session() as session:
        rows = (await session.execute(query)).all()
    return [
        _Target(
            service_id=r[0],
            billing_service_id=r[1],
            platform_id=r[2],
            ref=ServerRef(external_id=str(r[3]), node=r[4]),
        )
        for r in rows
    ]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def read_usage(driver: Any, ref: ServerRef) -> tuple[dict[str, int], list[str]]:
    """The figures the platform can give for one server (MB), and why the others are unknown."""
    figures: dict[str, int] = {}
    unknown: list[str] = []
    try:
        traffic = await driver.traffic(ref)
    except Exception as exc:
        unknown.append(f"traffic: {_describe(exc)}")
    else:
        figures["bwusage"] = traffic.total_bytes // MB
        figures["bwlimit"] = (traffic.limit_bytes or 0) // MB
    try:
        info = await driver.server_info(ref, live=True)
    except Exception as exc:
        unknown.append(f"disk: {_describe(exc)}")
    else:
        if info.disk_gb is not None:
            figures["disklimit"] = int(info.disk_gb) * 1024
        used = info.stats.get("disk_used_gb")
        if isinstance(used, int | float):
            figures["diskusage"] = round(used * 1024)
        else:
            unknown.append("disk usage: the guest agent reported no file systems")
    return figures, unknown


async def store_usage(ctx: AppContext, service_id: int, figures: Mapping[str, int]) -> None:
    """Merge ``figures`` into the service's stored usage; figures not given keep their old value."""
    async with ctx.db.session() as session:
        row = await session.get(Service, service_id, with_for_update=True)
        if row is None:
            return
        life = dict(row.lifecycle or {})
        usage = dict(life.get("usage") or {})
        usage.update({k: int(v) for k, v in figures.items() if k in COLUMNS})
        usage["updated_at"] = utcnow().isoformat()
        life["usage"] = usage
        row.lifecycle = life


async def collect_usage(ctx: AppContext) -> UsageRun:
    """Read usage for every active service with a server, store it, then run the listeners."""
    run = UsageRun()
    by_platform: dict[int, list[_Target]] = {}
    for target in await _targets(ctx):
        by_platform.setdefault(target.platform_id, []).append(target)
    for platform_id, targets in by_platform.items():
        run.services += len(targets)
        try:
            async with open_driver(ctx, platform_id) as (driver, _):
                for target in targets:
                    figures, unknown = await read_usage(driver, target.ref)
                    if figures:
                        await store_usage(ctx, target.service_id, figures)
                    if not unknown:
                        run.complete += 1
                    elif figures:
                        run.partial += 1
                    else:
                        run.failed += 1
                    run.problems.extend(f"service {target.service_id}: {p}" for p in unknown)
        except Exception as exc:  # the platform itself is unusable (disabled, gone)
            run.failed += len(targets)
            run.problems.append(f"platform {platform_id}: {_describe(exc)}")
    for listener in list(_LISTENERS):
        try:
            await listener(ctx, run)
        except Exception as exc:
            run.listener_errors += 1
            run.problems.append(f"{getattr(listener, '__name__', 'listener')}: {_describe(exc)}")
            log.warning("usage_listener_failed", error=_describe(exc))
    return run


async def billing_usage(ctx: AppContext) -> list[dict[str, Any]]:
    """Per active billing service: the stored figures (MB); a figure never collected is left out."""
    query = (
        select(Service.billing_service_id, Service.lifecycle)
        .where(Service.status == "active", Service.billing_service_id.is_not(None))
        .order_by(Service.id)
    )
    async with ctx.db.session() as session:
        rows = (await session.execute(query)).all()
    out: list[dict[str, Any]] = []
    for billing_id, life in rows:
        usage = (life or {}).get("usage") or {}
        row: dict[str, Any] = {"serviceid": billing_id}
        for column in COLUMNS:
            if isinstance(usage.get(column), int | float):
                row[column] = int(usage[column])
        out.append(row)
    return out
