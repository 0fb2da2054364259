"""DNS automation as the application uses it: providers from the catalog, zones, PTR and forward policy.

The provider back-ends and the database-free PTR rules live in :mod:`vpsbridge.dns`; this package
adds what needs the database, the cache and the job queue. Provisioning calls the three hooks
(:func:`on_server_provisioned`, :func:`on_server_renamed`, :func:`on_server_terminated`); the web
and CLI layers call the rest.
"""

from vpsbridge.services.dns.addresses import (
    ServerTarget,
    fresh_addresses,
    is_private,
    load_target,
    load_targets,
)
from vpsbridge.services.dns.catalog import (
    ProviderTestReport,
    ZoneMap,
    ZoneOut,
    ZoneSyncReport,
    list_zones,
    load_zone_map,
    set_zone_enabled,
    sync_zones,
    test_dns_provider,
)
from vpsbridge.services.dns.client import (
    EditTooSoon,
    NotOwned,
    PtrEditResult,
    PtrRow,
    check_hostname,
    ptr_overview,
    set_client_ptr,
)
from vpsbridge.services.dns.hooks import (
    DNS_SYNC,
    enqueue_dns_sync,
    on_server_provisioned,
    on_server_renamed,
    on_server_terminated,
)
from vpsbridge.services.dns.sync import (
    DnsSession,
    ReconcileReport,
    reconcile_fleet,
    summarize,
    sync_server_now,
)

__all__ = [
    "DNS_SYNC",
    "DnsSession",
    "EditTooSoon",
    "NotOwned",
    "ProviderTestReport",
    "PtrEditResult",
    "PtrRow",
    "ReconcileReport",
    "ServerTarget",
    "ZoneMap",
    "ZoneOut",
    "ZoneSyncReport",
    "check_hostname",
    "enqueue_dns_sync",
    "fresh_addresses",
    "is_private",
    "list_zones",
    "load_target",
    "load_targets",
    "load_zone_map",
    "on_server_provisioned",
    "on_server_renamed",
    "on_server_terminated",
    "ptr_overview",
    "reconcile_fleet",
    "set_client_ptr",
    "set_zone_enabled",
    "summarize",
    "sync_server_now",
    "sync_zones",
    "test_dns_provider",
]
