"""Analytics turns: the time a paused turn waited for a person's decision.

Revision ID: 0016_analytics_turns
Revises: 0015_langgraph_api
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0016_analytics_turns"
down_revision: str | Sequence[str] | None = "0015_langgraph_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add usage_events.approval_wait_ms."""
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("approval_wait_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop usage_events.approval_wait_ms."""
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("approval_wait_ms")
