"""The operator console's first page: what exists, what is failing, what can still be sold.

Every figure comes from our own tables (no upstream call), so the dashboard opens instantly even
when a platform is down; stock shows the last stored result and its age.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from vpsbridge.services.admin_console.jobs import JobSummary, failing_jobs, jobs_by_status
from vpsbridge.store.models import DnsProvider, IpPool, Platform, Product, Server, Service

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext
    from vpsbridge.services.stock import StockResultOut


@dataclass(frozen=True)
class Dashboard:
    services_by_status: dict[str, int]
    servers_by_state: dict[str, int]
    jobs_by_status: dict[str, int]
    failing_jobs: list[JobSummary]
    stock: list[StockResultOut]
    catalog: dict[str, int] = field(default_factory=dict)

    @property
    def service_total(self) -> int:
        return sum(self.services_by_status.values())


async def _grouped(ctx: AppContext, column: object) -> dict[str, int]:
    async with ctx.db.session() as session:
        rows = (await session.execute(select(column, func.count()).group_by(column))).all()  # type: ignore[call-overload]
    return {str(key): int(count) for key, count in sorted(rows, key=lambda r: str(r[0]))}


async def dashboard(ctx: AppContext) -> Dashboard:
    from vpsbridge.services import stock

    catalog: dict[str, int] = {}
    async with ctx.db.session() as session:
        for label, model in (
            ("platforms", Platform),
            ("products", Product),
            ("ip_pools", IpPool),
            ("dns_providers", DnsProvider),
        ):
            catalog[label] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
    return Dashboard(
        services_by_status=await _grouped(ctx, Service.status),
        servers_by_state=await _grouped(ctx, Server.state),
        jobs_by_status=await jobs_by_status(ctx),
        failing_jobs=await failing_jobs(ctx),
        stock=await stock.results(ctx),
        catalog=catalog,
    )
