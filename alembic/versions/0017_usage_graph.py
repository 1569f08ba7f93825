"""The graph on usage and approvals: usage events name the graph that ran, approvals their kind.

Revision ID: 0017_usage_graph
Revises: 0015_langgraph_api
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0017_usage_graph"
down_revision: str | Sequence[str] | None = "0016_analytics_turns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add usage_events.graph_id (earlier turns were the assistant's) and approvals.kind."""
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("graph_id", sa.String(100), nullable=True))
    op.execute(
        "UPDATE usage_events SET graph_id = 'assistant' WHERE kind IN ('agent_turn', 'memory')"
    )
    op.create_index(
        "ix_usage_events_graph_id_created_at", "usage_events", ["graph_id", "created_at"]
    )
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="tool"))


def downgrade() -> None:
    """Drop what upgrade added."""
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("kind")
    op.drop_index("ix_usage_events_graph_id_created_at", table_name="usage_events")
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("graph_id")
