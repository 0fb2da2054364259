"""All tables. Importing this package registers every model on ``Base.metadata``."""

from vpsbridge.store.models.auth import Admin, ApiToken, WebSession
from vpsbridge.store.models.base import Base, Timestamped, UTCDateTime, utcnow
from vpsbridge.store.models.billing import CreditInvoice
from vpsbridge.store.models.catalog import DnsProvider, DnsZone, Platform, Product
from vpsbridge.store.models.inventory import IpAddress, IpPool, Server, Service
from vpsbridge.store.models.jobs import Job, JobLog, JobStep, PeriodicTask
from vpsbridge.store.models.records import AuditLog, StockResult, UpstreamRequest
from vpsbridge.store.models.vmids import VmidReservation

__all__ = [
    "Admin",
    "ApiToken",
    "AuditLog",
    "Base",
    "CreditInvoice",
    "DnsProvider",
    "DnsZone",
    "IpAddress",
    "IpPool",
    "Job",
    "JobLog",
    "JobStep",
    "PeriodicTask",
    "Platform",
    "Product",
    "Server",
    "Service",
    "StockResult",
    "Timestamped",
    "UTCDateTime",
    "UpstreamRequest",
    "VmidReservation",
    "WebSession",
    "utcnow",
]
