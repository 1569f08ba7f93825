"""Retention: daily aggregates of usage events older than MAI_USAGE_RETENTION_DAYS.

Revision ID: 0012_retention
Revises: 0008_run_engine
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012_retention"
down_revision: str | Sequence[str] | None = "0008_run_engine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create usage_daily."""
    op.create_table(
        "usage_daily",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_usage_daily_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_usage_daily"),
        sa.UniqueConstraint("day", "user_id", "kind", "model", "status", name="uq_usage_daily_day"),
    )
    op.create_index("ix_usage_daily_user_id_day", "usage_daily", ["user_id", "day"])


def downgrade() -> None:
    """Drop usage_daily."""
    op.drop_index("ix_usage_daily_user_id_day", table_name="usage_daily")
    op.drop_table("usage_daily")
