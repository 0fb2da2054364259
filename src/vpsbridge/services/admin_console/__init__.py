"""Read models and operator-only actions of the operator console (``/admin``).

The console calls the capability services for everything they own (catalog, jobs engine,
provisioning, stock, DNS); this package adds the views only an operator needs::

    dashboard(ctx) -> Dashboard
    list_jobs(ctx, *, status=None, kind=None, resource=None, limit=50, offset=0) -> list[JobSummary]
    job_detail(ctx, job_id) -> JobDetail          # steps with timings, log lines, upstream calls
    delete_job(ctx, job_id, actor) -> None        # finished jobs only, audited
    cancel_job(ctx, job_id, actor) / reset_job(ctx, job_id, actor, mode) -> status   # the engine's, worded
    search_upstream(ctx, UpstreamQuery) -> list[LoggedRequest]
    get_upstream(ctx, request_id) -> LoggedRequest | None
    list_audit(ctx, AuditQuery) -> list[AuditEntry]
    list_services(ctx, ServiceFilter) -> (list[ServiceRow], total)
    service_detail(ctx, service_id) -> ServiceDetail
    set_server_external_id(ctx, service_id, external_id, actor) -> ServiceOut
    refresh_server_object(ctx, service_id, actor) -> ServiceOut
    validate_service(ctx, service_id) -> list[Finding]
    platform_login_url(ctx, service_id, actor) -> str   # the platform panel, as the owner
    platform_capacity(ctx, platform_id, placement=None) -> CapacityReport
    product_choices(ctx) -> list[ProductChoice]   # enabled products with live stock ("New service")
    product_gallery(ctx, product_id) -> {family: [OsChoice]}
    create_from_console(ctx, NewService, actor) -> ServiceOut   # stock + OS checks, then create_service
"""

from vpsbridge.services.admin_console.audit import AuditEntry, AuditQuery, list_audit
from vpsbridge.services.admin_console.capacity import platform_capacity
from vpsbridge.services.admin_console.dashboard import Dashboard, dashboard
from vpsbridge.services.admin_console.jobs import (
    JOB_FILTERS,
    RESET_MODES,
    JobDetail,
    JobSummary,
    StepView,
    cancel_job,
    delete_job,
    failing_jobs,
    job_detail,
    job_kinds,
    jobs_by_status,
    list_jobs,
    reset_job,
)
from vpsbridge.services.admin_console.provision import (
    NewService,
    OsChoice,
    ProductChoice,
    create_from_console,
    product_choices,
    product_gallery,
)
from vpsbridge.services.admin_console.servers import (
    SERVICE_STATUSES,
    Finding,
    ServiceDetail,
    ServiceFilter,
    ServiceRow,
    list_services,
    platform_login_url,
    refresh_server_object,
    service_detail,
    set_server_external_id,
    validate_service,
)
from vpsbridge.services.admin_console.upstream import (
    OUTCOMES,
    UpstreamQuery,
    get_upstream,
    search_upstream,
    upstream_clients,
)

__all__ = [
    "JOB_FILTERS",
    "OUTCOMES",
    "RESET_MODES",
    "SERVICE_STATUSES",
    "AuditEntry",
    "AuditQuery",
    "Dashboard",
    "Finding",
    "JobDetail",
    "JobSummary",
    "NewService",
    "OsChoice",
    "ProductChoice",
    "ServiceDetail",
    "ServiceFilter",
    "ServiceRow",
    "StepView",
    "UpstreamQuery",
    "cancel_job",
    "create_from_console",
    "dashboard",
    "delete_job",
    "failing_jobs",
    "get_upstream",
    "job_detail",
    "job_kinds",
    "jobs_by_status",
    "list_audit",
    "list_jobs",
    "list_services",
    "platform_capacity",
    "platform_login_url",
    "product_choices",
    "product_gallery",
    "refresh_server_object",
    "reset_job",
    "search_upstream",
    "service_detail",
    "set_server_external_id",
    "upstream_clients",
    "validate_service",
]
