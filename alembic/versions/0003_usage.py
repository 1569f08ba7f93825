"""Usage: usage events (turns, knowledge-base uploads and searches) and per-user token budgets.

Revision ID: 0003_usage
Revises: 0002_agent
Create Date: 2026-11-23
"""

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.models.base import UTCDateTime

revision: str = "0003_usage"
down_revision: str | Sequence[str] | None = "0002_agent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create usage_events and add users.daily_token_budget."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("daily_token_budget", sa.Integer(), nullable=True))
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("ttft_ms", sa.Integer(), nullable=True),
        sa.Column("streamed", sa.Boolean(), nullable=False),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_usage_events_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
    )
    op.create_index("ix_usage_events_user_id_created_at", "usage_events", ["user_id", "created_at"])
    op.create_index("ix_usage_events_kind_created_at", "usage_events", ["kind", "created_at"])
    op.create_index(op.f("ix_usage_events_created_at"), "usage_events", ["created_at"])
    op.create_index(op.f("ix_usage_events_conversation_id"), "usage_events", ["conversation_id"])
    op.create_index(op.f("ix_usage_events_run_id"), "usage_events", ["run_id"])


def downgrade() -> None:
    """Drop usage_events and users.daily_token_budget."""
    op.drop_index(op.f("ix_usage_events_run_id"), table_name="usage_events")
    op.drop_index(op.f("ix_usage_events_conversation_id"), table_name="usage_events")
    op.drop_index(op.f("ix_usage_events_created_at"), table_name="usage_events")
    op.drop_index("ix_usage_events_kind_created_at", table_name="usage_events")
    op.drop_index("ix_usage_events_user_id_created_at", table_name="usage_events")
    op.drop_table("usage_events")
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 35):
        # Native DROP COLUMN: batch mode would copy and drop `users`, and with foreign keys on
        # that drop cascades into every table referencing users (their sessions, documents...).
        op.drop_column("users", "daily_token_budget")
    else:
        with op.batch_alter_table("users") as batch:
            batch.drop_column("daily_token_budget")
