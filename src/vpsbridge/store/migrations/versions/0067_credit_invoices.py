"""Credit invoices: self-service credit invoices raised in billing, credited to the panel once paid.

Revision ID: 0067
Revises: 0041
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0067"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "credit_invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("credit_id", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_credit_invoices_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_credit_invoices_service_id_services"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_invoices")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_credit_invoices_invoice_id")),
    )
    op.create_index(op.f("ix_credit_invoices_platform_id"), "credit_invoices", ["platform_id"], unique=False)
    op.create_index(op.f("ix_credit_invoices_client_id"), "credit_invoices", ["client_id"], unique=False)
    op.create_index(op.f("ix_credit_invoices_status"), "credit_invoices", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_credit_invoices_status"), table_name="credit_invoices")
    op.drop_index(op.f("ix_credit_invoices_client_id"), table_name="credit_invoices")
    op.drop_index(op.f("ix_credit_invoices_platform_id"), table_name="credit_invoices")
    op.drop_table("credit_invoices")
