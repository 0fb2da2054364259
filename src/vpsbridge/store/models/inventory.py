"""What exists: billing services, the servers behind them, IP pools and their addresses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vpsbridge.store.models.base import Base, Timestamped


class Server(Timestamped, Base):
    """A VPS on a platform; ``last_known`` caches the platform's last answer for offline display."""

    __tablename__ = "servers"
    __table_args__ = (UniqueConstraint("platform_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="RESTRICT"), index=True)
    #: The platform's own id (VirtFusion server id, Proxmox vmid); null until created upstream.
    external_id: Mapped[str | None] = mapped_column(String(64))
    node: Mapped[str | None] = mapped_column(String(100))
    hostname: Mapped[str | None] = mapped_column(String(253))
    name: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(32), default="pending")
    credentials_enc: Mapped[str | None] = mapped_column(Text)
    last_known: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Service(Timestamped, Base):
    """A billing service (a WHMCS hosting row) owned by one billing client."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    billing_service_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"), index=True)
    server_id: Mapped[int | None] = mapped_column(ForeignKey("servers.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(32), default="pending")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: The last lifecycle failure, as a sentence an operator (and billing) can read.
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Lifecycle bookkeeping: what was asked (template, keys), warnings, the jobs that ran.
    lifecycle: Mapped[dict[str, Any]] = mapped_column(default=dict)


class IpPool(Timestamped, Base):
    __tablename__ = "ip_pools"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platforms.id", ondelete="SET NULL"), index=True
    )
    #: Node or group name the pool serves (null = the whole platform).
    scope: Mapped[str | None] = mapped_column(String(100))
    family: Mapped[int] = mapped_column(default=4)
    #: CIDR of the network, e.g. 192.0.2.0/24 or 2001:db8::/48.
    network: Mapped[str] = mapped_column(String(64))
    range_start: Mapped[str | None] = mapped_column(String(64))
    range_end: Mapped[str | None] = mapped_column(String(64))
    gateway: Mapped[str | None] = mapped_column(String(64))
    prefix_length: Mapped[int | None] = mapped_column()
    dns_servers: Mapped[list[Any]] = mapped_column(default=list)
    bridge: Mapped[str | None] = mapped_column(String(64))
    vlan: Mapped[int | None] = mapped_column()
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)


class IpAddress(Timestamped, Base):
    """One assignment row per address: the unique constraint is what prevents double allocation."""

    __tablename__ = "ip_addresses"
    __table_args__ = (
        UniqueConstraint("pool_id", "address"),
        Index("ix_ip_addresses_server", "server_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("ip_pools.id", ondelete="RESTRICT"), index=True)
    address: Mapped[str] = mapped_column(String(64))
    server_id: Mapped[int | None] = mapped_column(ForeignKey("servers.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default="allocated")  # allocated | reserved
    note: Mapped[str | None] = mapped_column(String(200))
