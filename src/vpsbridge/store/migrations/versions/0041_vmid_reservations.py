"""VMID reservations: the unique (platform, vmid) rows deploys insert before cloning.

Revision ID: 0041
Revises: 0023
Create Date: 2026-11-23 11:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0041"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "vmid_reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("vmid", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_vmid_reservations_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_vmid_reservations_server_id_servers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vmid_reservations")),
        sa.UniqueConstraint("platform_id", "vmid", name=op.f("uq_vmid_reservations_platform_id_vmid")),
    )
    op.create_index(
        op.f("ix_vmid_reservations_platform_id"), "vmid_reservations", ["platform_id"], unique=False
    )
    op.create_index(op.f("ix_vmid_reservations_server_id"), "vmid_reservations", ["server_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_vmid_reservations_server_id"), table_name="vmid_reservations")
    op.drop_index(op.f("ix_vmid_reservations_platform_id"), table_name="vmid_reservations")
    op.drop_table("vmid_reservations")
