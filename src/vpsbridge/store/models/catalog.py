"""What the operator configures: platforms, products, DNS providers and zones."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vpsbridge.store.models.base import Base, Timestamped


class Platform(Timestamped, Base):
    """A hypervisor control plane (a VirtFusion panel, a Proxmox VE cluster, ...)."""

    __tablename__ = "platforms"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(500))
    #: MultiFernet token of a JSON object (API token, secrets); never returned to a browser.
    credentials_enc: Mapped[str | None] = mapped_column(Text)
    verify_tls: Mapped[bool] = mapped_column(default=True)
    ca_bundle: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)


class Product(Timestamped, Base):
    """The single source of product settings; the billing bridge upserts it from WHMCS."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    billing_product_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="RESTRICT"), index=True)
    #: Where servers may be placed: hypervisor group ids, nodes, storages.
    placement: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Plan defaults (package id, CPU, memory, disk, traffic, ...) each capability interprets.
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stock_control: Mapped[bool] = mapped_column(default=False)
    stock_buffer_pct: Mapped[float] = mapped_column(default=10.0)
    dns_zone: Mapped[str | None] = mapped_column(String(253))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)


class DnsProvider(Timestamped, Base):
    __tablename__ = "dns_providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(String(500))
    credentials_enc: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)


class DnsZone(Timestamped, Base):
    __tablename__ = "dns_zones"
    __table_args__ = (UniqueConstraint("provider_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("dns_providers.id", ondelete="CASCADE"), index=True)
    #: Fully qualified, lower case, trailing dot.
    name: Mapped[str] = mapped_column(String(253))
    kind: Mapped[str] = mapped_column(String(16), default="forward")  # forward | reverse
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
