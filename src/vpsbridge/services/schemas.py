"""Input and output models of the catalog and auth services.

``*Create`` models carry everything needed to make an object, ``*Update`` models carry only what the
caller wants to change (services apply ``model_dump(exclude_unset=True)``, so an omitted field is
left alone and an explicit ``null`` clears it). ``*Out`` models are what leaves a service; they never
contain credentials, only ``has_credentials``, because they end up in browsers, API responses and
CLI output. Semantic checks that need more than one field or the database (a pool range inside its
network, a platform that exists) live in the services and raise :class:`~vpsbridge.services.errors.
Invalid` naming the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Scope = Literal["read", "write", "admin"]
#: Scopes in increasing power: a token allows its own scope and every scope before it.
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")

#: Names that work unquoted on a command line and in URLs of the API.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


def _name(default: Any = ...) -> Any:
    return Field(default=default, min_length=1, max_length=100, pattern=NAME_PATTERN)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- platforms -------------------------------------------------------------------------------------


class PlatformCreate(_In):
    name: str = _name()
    type: str = Field(min_length=1, max_length=32)
    url: str = Field(min_length=1, max_length=500)
    #: Write-only: API token and other secrets, stored encrypted.
    credentials: dict[str, Any] | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class PlatformUpdate(_In):
    name: str | None = _name(None)
    type: str | None = Field(default=None, min_length=1, max_length=32)
    url: str | None = Field(default=None, min_length=1, max_length=500)
    credentials: dict[str, Any] | None = None
    verify_tls: bool | None = None
    ca_bundle: str | None = None
    settings: dict[str, Any] | None = None
    enabled: bool | None = None


class PlatformOut(_Out):
    id: int
    name: str
    type: str
    url: str
    has_credentials: bool
    verify_tls: bool
    ca_bundle: str | None
    settings: dict[str, Any]
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


# --- products --------------------------------------------------------------------------------------


class ProductCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    billing_product_id: str | None = Field(default=None, max_length=64)
    #: Platform id or name.
    platform: int | str
    placement: dict[str, Any] = Field(default_factory=dict)
    plan: dict[str, Any] = Field(default_factory=dict)
    stock_control: bool = False
    stock_buffer_pct: float = Field(default=10.0, ge=0, le=100)
    dns_zone: str | None = Field(default=None, max_length=253)
    settings: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class ProductUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    billing_product_id: str | None = Field(default=None, max_length=64)
    platform: int | str | None = None
    placement: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    stock_control: bool | None = None
    stock_buffer_pct: float | None = Field(default=None, ge=0, le=100)
    dns_zone: str | None = Field(default=None, max_length=253)
    settings: dict[str, Any] | None = None
    enabled: bool | None = None


class ProductOut(_Out):
    id: int
    name: str
    billing_product_id: str | None
    platform_id: int
    platform_name: str
    placement: dict[str, Any]
    plan: dict[str, Any]
    stock_control: bool
    stock_buffer_pct: float
    dns_zone: str | None
    settings: dict[str, Any]
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


# --- IP pools --------------------------------------------------------------------------------------


class IpPoolCreate(_In):
    name: str = _name()
    #: Platform id or name; null = not tied to a platform.
    platform: int | str | None = None
    scope: str | None = Field(default=None, max_length=100)
    #: CIDR, e.g. ``192.0.2.0/24`` or ``2001:db8::/48``; the family is derived from it.
    network: str = Field(min_length=1, max_length=64)
    range_start: str | None = None
    range_end: str | None = None
    gateway: str | None = None
    #: Prefix length configured on servers; defaults to the network's own prefix.
    prefix_length: int | None = Field(default=None, ge=0, le=128)
    dns_servers: list[str] = Field(default_factory=list)
    bridge: str | None = Field(default=None, max_length=64)
    vlan: int | None = Field(default=None, ge=1, le=4094)
    settings: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class IpPoolUpdate(_In):
    name: str | None = _name(None)
    platform: int | str | None = None
    scope: str | None = Field(default=None, max_length=100)
    network: str | None = Field(default=None, min_length=1, max_length=64)
    range_start: str | None = None
    range_end: str | None = None
    gateway: str | None = None
    prefix_length: int | None = Field(default=None, ge=0, le=128)
    dns_servers: list[str] | None = None
    bridge: str | None = Field(default=None, max_length=64)
    vlan: int | None = Field(default=None, ge=1, le=4094)
    settings: dict[str, Any] | None = None
    enabled: bool | None = None


class IpPoolOut(_Out):
    id: int
    name: str
    platform_id: int | None
    platform_name: str | None
    scope: str | None
    family: int
    network: str
    range_start: str | None
    range_end: str | None
    gateway: str | None
    prefix_length: int | None
    dns_servers: list[str]
    bridge: str | None
    vlan: int | None
    settings: dict[str, Any]
    enabled: bool
    #: Addresses the pool can hand out (range, or the network minus reserved addresses).
    size: int
    allocated: int
    reserved: int
    free: int
    created_at: dt.datetime
    updated_at: dt.datetime


# --- DNS providers ---------------------------------------------------------------------------------


class DnsProviderCreate(_In):
    name: str = _name()
    type: str = Field(min_length=1, max_length=32)
    url: str | None = Field(default=None, max_length=500)
    credentials: dict[str, Any] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class DnsProviderUpdate(_In):
    name: str | None = _name(None)
    type: str | None = Field(default=None, min_length=1, max_length=32)
    url: str | None = Field(default=None, max_length=500)
    credentials: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    enabled: bool | None = None


class DnsProviderOut(_Out):
    id: int
    name: str
    type: str
    url: str | None
    has_credentials: bool
    settings: dict[str, Any]
    enabled: bool
    zone_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


# --- tokens and admins -----------------------------------------------------------------------------


class TokenOut(_Out):
    id: int
    name: str
    prefix: str
    scope: Scope
    created_by: str | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    expires_at: dt.datetime | None
    active: bool


class TokenPrincipal(BaseModel):
    """An authenticated API token, as the web layer sees it."""

    model_config = ConfigDict(frozen=True)

    token_id: int
    name: str
    prefix: str
    scope: Scope

    def allows(self, scope: Scope) -> bool:
        """True when this token's scope is ``scope`` or a stronger one (read < write < admin)."""
        return SCOPES.index(self.scope) >= SCOPES.index(scope)


class AdminOut(_Out):
    id: int
    username: str
    is_active: bool
    has_totp: bool
    last_login_at: dt.datetime | None
    created_at: dt.datetime


# --- key rotation ----------------------------------------------------------------------------------


class RotationReport(BaseModel):
    """Per ``table.column``: how many stored secrets were re-encrypted with the newest key."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())
