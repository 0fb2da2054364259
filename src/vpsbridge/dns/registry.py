"""From a stored provider row (type, url, credentials, settings) to a live :class:`DnsProvider`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vpsbridge.dns.base import DnsProvider
from vpsbridge.dns.cloudflare import CloudflareProvider
from vpsbridge.dns.errors import DnsConfigError
from vpsbridge.dns.hestiacp import HestiaProvider
from vpsbridge.dns.powerdns import PowerDnsProvider
from vpsbridge.http import Recorder

PROVIDER_TYPES: dict[str, type[DnsProvider]] = {
    PowerDnsProvider.TYPE: PowerDnsProvider,
    CloudflareProvider.TYPE: CloudflareProvider,
    HestiaProvider.TYPE: HestiaProvider,
}


def provider_class(provider_type: str) -> type[DnsProvider]:
    try:
        return PROVIDER_TYPES[provider_type.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(PROVIDER_TYPES))
        raise DnsConfigError(f"unknown DNS provider type {provider_type!r} (known: {known})") from None


def create_provider(
    provider_type: str,
    *,
    url: str | None,
    credentials: Mapping[str, Any] | None,
    settings: Mapping[str, Any] | None = None,
    recorder: Recorder | None = None,
    transport: Any = None,
) -> DnsProvider:
    """Build a provider; ``transport`` (an httpx2 transport) lets tests and the demo use simulators.

    Raises :class:`DnsConfigError` naming the missing or malformed field.
    """
    cls = provider_class(provider_type)
    creds = {str(k): str(v) for k, v in (credentials or {}).items() if v is not None}
    return cls.from_config(
        url=url, credentials=creds, settings=dict(settings or {}), recorder=recorder, transport=transport
    )
