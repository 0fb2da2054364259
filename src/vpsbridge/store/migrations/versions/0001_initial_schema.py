"""Initial schema: every table of the first-cut data model.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 10:26:59.749288
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Timestamps are timezone-aware; the models' UTCDateTime type adapts values, the DDL is plain.
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("totp_secret_enc", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("last_login_at", UTC, nullable=True),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admins")),
        sa.UniqueConstraint("username", name=op.f("uq_admins_username")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("last_used_at", UTC, nullable=True),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.Column("expires_at", UTC, nullable=True),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_tokens_prefix")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", UTC, nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=100), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("object_type", sa.String(length=50), nullable=True),
        sa.Column("object_id", sa.String(length=100), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_ts"), "audit_log", ["ts"], unique=False)

    op.create_table(
        "dns_providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("credentials_enc", sa.Text(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dns_providers")),
        sa.UniqueConstraint("name", name=op.f("uq_dns_providers_name")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("resource_key", sa.String(length=200), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", UTC, nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", UTC, nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("started_at", UTC, nullable=True),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_claim", "jobs", ["status", "run_at"], unique=False)
    op.create_index(op.f("ix_jobs_kind"), "jobs", ["kind"], unique=False)
    op.create_index(op.f("ix_jobs_resource_key"), "jobs", ["resource_key"], unique=False)
    op.create_index(
        "uq_jobs_running_resource",
        "jobs",
        ["resource_key"],
        unique=True,
        sqlite_where=sa.text("status = 'running' AND resource_key IS NOT NULL"),
        postgresql_where=sa.text("status = 'running' AND resource_key IS NOT NULL"),
    )
    op.create_index(
        "uq_jobs_waiting_dedupe",
        "jobs",
        ["dedupe_key"],
        unique=True,
        sqlite_where=sa.text("status = 'queued' AND dedupe_key IS NOT NULL"),
        postgresql_where=sa.text("status = 'queued' AND dedupe_key IS NOT NULL"),
    )

    op.create_table(
        "periodic_tasks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("next_run_at", UTC, nullable=True),
        sa.Column("last_run_at", UTC, nullable=True),
        sa.Column("last_result", sa.JSON(), nullable=True),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_periodic_tasks")),
    )
    op.create_table(
        "platforms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("credentials_enc", sa.Text(), nullable=True),
        sa.Column("verify_tls", sa.Boolean(), nullable=False),
        sa.Column("ca_bundle", sa.Text(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platforms")),
        sa.UniqueConstraint("name", name=op.f("uq_platforms_name")),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_expires_at"), "sessions", ["expires_at"], unique=False)

    op.create_table(
        "upstream_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", UTC, nullable=False),
        sa.Column("client", sa.String(length=50), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("request_body", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_requests")),
    )
    op.create_index(op.f("ix_upstream_requests_job_id"), "upstream_requests", ["job_id"], unique=False)
    op.create_index(op.f("ix_upstream_requests_ts"), "upstream_requests", ["ts"], unique=False)

    op.create_table(
        "dns_zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["dns_providers.id"],
            name=op.f("fk_dns_zones_provider_id_dns_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dns_zones")),
        sa.UniqueConstraint("provider_id", "name", name=op.f("uq_dns_zones_provider_id_name")),
    )
    op.create_index(op.f("ix_dns_zones_provider_id"), "dns_zones", ["provider_id"], unique=False)

    op.create_table(
        "ip_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.String(length=100), nullable=True),
        sa.Column("family", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("range_start", sa.String(length=64), nullable=True),
        sa.Column("range_end", sa.String(length=64), nullable=True),
        sa.Column("gateway", sa.String(length=64), nullable=True),
        sa.Column("prefix_length", sa.Integer(), nullable=True),
        sa.Column("dns_servers", sa.JSON(), nullable=False),
        sa.Column("bridge", sa.String(length=64), nullable=True),
        sa.Column("vlan", sa.Integer(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_ip_pools_platform_id_platforms"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_pools")),
        sa.UniqueConstraint("name", name=op.f("uq_ip_pools_name")),
    )
    op.create_index(op.f("ix_ip_pools_platform_id"), "ip_pools", ["platform_id"], unique=False)

    op.create_table(
        "job_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("ts", UTC, nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("step", sa.String(length=100), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_log_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_log")),
    )
    op.create_index(op.f("ix_job_log_job_id"), "job_log", ["job_id"], unique=False)
    op.create_index(op.f("ix_job_log_ts"), "job_log", ["ts"], unique=False)

    op.create_table(
        "job_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_steps_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_steps")),
    )
    op.create_index(op.f("ix_job_steps_job_id"), "job_steps", ["job_id"], unique=False)

    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("billing_product_id", sa.String(length=64), nullable=True),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("placement", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("stock_control", sa.Boolean(), nullable=False),
        sa.Column("stock_buffer_pct", sa.Double(), nullable=False),
        sa.Column("dns_zone", sa.String(length=253), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_products_platform_id_platforms"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("billing_product_id", name=op.f("uq_products_billing_product_id")),
    )
    op.create_index(op.f("ix_products_platform_id"), "products", ["platform_id"], unique=False)

    op.create_table(
        "servers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("node", sa.String(length=100), nullable=True),
        sa.Column("hostname", sa.String(length=253), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("credentials_enc", sa.Text(), nullable=True),
        sa.Column("last_known", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_servers_platform_id_platforms"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
        sa.UniqueConstraint("platform_id", "external_id", name=op.f("uq_servers_platform_id_external_id")),
    )
    op.create_index(op.f("ix_servers_platform_id"), "servers", ["platform_id"], unique=False)

    op.create_table(
        "ip_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["ip_pools.id"], name=op.f("fk_ip_addresses_pool_id_ip_pools"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_ip_addresses_server_id_servers"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_addresses")),
        sa.UniqueConstraint("pool_id", "address", name=op.f("uq_ip_addresses_pool_id_address")),
    )
    op.create_index(op.f("ix_ip_addresses_pool_id"), "ip_addresses", ["pool_id"], unique=False)
    op.create_index("ix_ip_addresses_server", "ip_addresses", ["server_id"], unique=False)

    op.create_table(
        "services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("billing_service_id", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("server_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_services_product_id_products"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_services_server_id_servers"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services")),
        sa.UniqueConstraint("billing_service_id", name=op.f("uq_services_billing_service_id")),
    )
    op.create_index(op.f("ix_services_client_id"), "services", ["client_id"], unique=False)
    op.create_index(op.f("ix_services_product_id"), "services", ["product_id"], unique=False)
    op.create_index(op.f("ix_services_server_id"), "services", ["server_id"], unique=False)

    op.create_table(
        "stock_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("breakdown", sa.JSON(), nullable=False),
        sa.Column("computed_at", UTC, nullable=False),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_stock_results_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_results")),
        sa.UniqueConstraint("product_id", name=op.f("uq_stock_results_product_id")),
    )


def downgrade() -> None:
    op.drop_table("stock_results")
    op.drop_table("services")
    op.drop_table("ip_addresses")
    op.drop_table("servers")
    op.drop_table("products")
    op.drop_table("job_steps")
    op.drop_table("job_log")
    op.drop_table("ip_pools")
    op.drop_table("dns_zones")
    op.drop_table("upstream_requests")
    op.drop_table("sessions")
    op.drop_table("platforms")
    op.drop_table("periodic_tasks")
    op.drop_table("jobs")
    op.drop_table("dns_providers")
    op.drop_table("audit_log")
    op.drop_table("api_tokens")
    op.drop_table("admins")
