"""Prometheus metrics at ``/metrics``.

Process-wide counters and histograms (HTTP requests, upstream calls, job outcomes) live in
prometheus-client's default registry, filled by whoever observes the event. Queue figures (jobs per
status, the backlog of due jobs, the age of the oldest due job) are *computed on scrape* from the
database instead, because every web and worker process would otherwise report its own partial view of
one shared queue. The endpoint can require ``Authorization: Bearer <metrics_token>``; the token is
compared in constant time.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from vpsbridge.logs import get_logger
from vpsbridge.services.context import AppContext
from vpsbridge.store.models import Job
from vpsbridge.store.models.base import utcnow
from vpsbridge.store.models.jobs import JOB_STATUSES
from vpsbridge.web.deps import Ctx
from vpsbridge.web.errors import APIError, error_responses

log = get_logger(__name__)

router = APIRouter(tags=["health"])

_UP_HELP = "1 when the queue gauges below could be read from the database on this scrape."


def token_matches(expected: str, authorization: str | None) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header against ``expected``."""
    if not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


async def queue_registry(ctx: AppContext) -> CollectorRegistry:
    """A throw-away registry holding the queue gauges as the database sees them right now."""
    registry = CollectorRegistry(auto_describe=True)
    by_status = Gauge("vpsbridge_jobs", "Jobs by status.", ["status"], registry=registry)
    backlog = Gauge("vpsbridge_job_backlog", "Queued jobs whose run time has come.", registry=registry)
    oldest = Gauge(
        "vpsbridge_job_oldest_queued_age_seconds",
        "Seconds the oldest due queued job has been waiting (0 when none).",
        registry=registry,
    )
    now = utcnow()
    async with ctx.db.session() as session:
        counts = dict((await session.execute(select(Job.status, func.count()).group_by(Job.status))).all())
        due = select(func.count(), func.min(Job.run_at)).where(Job.status == "queued", Job.run_at <= now)
        due_count, oldest_run_at = (await session.execute(due)).one()
    for status in JOB_STATUSES:
        by_status.labels(status).set(counts.get(status, 0))
    backlog.set(due_count or 0)
    if oldest_run_at is not None:
        # SQLite's MIN() returns the raw value, bypassing the column type's UTC conversion.
        oldest_at = oldest_run_at if oldest_run_at.tzinfo else oldest_run_at.replace(tzinfo=now.tzinfo)
        oldest.set(max(0.0, (now - oldest_at).total_seconds()))
    return registry


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401)},
)
async def metrics(ctx: Ctx, request: Request) -> Response:
    expected = ctx.settings.metrics_token
    authorization = request.headers.get("authorization")
    if expected is not None and not token_matches(expected.get_secret_value(), authorization):
        raise APIError(
            401,
            "A valid metrics token is required (Authorization: Bearer <VPSBRIDGE_METRICS_TOKEN>).",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = generate_latest(REGISTRY)
    try:
        queue_metrics = await queue_registry(ctx)
    except Exception as exc:
        # Process metrics are still worth scraping while the database is down; the gauge says why
        # the queue figures are missing instead of the whole scrape failing.
        log.warning("metrics_queue_unavailable", error_type=type(exc).__name__, error=str(exc))
        queue_metrics = CollectorRegistry(auto_describe=True)
        Gauge("vpsbridge_queue_metrics_up", _UP_HELP, registry=queue_metrics).set(0)
    else:
        Gauge("vpsbridge_queue_metrics_up", _UP_HELP, registry=queue_metrics).set(1)
    return Response(body + generate_latest(queue_metrics), media_type=CONTENT_TYPE_LATEST)
