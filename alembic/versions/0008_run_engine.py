"""The run engine: agent_runs becomes the durable run queue; tool executions ledger.

Revision ID: 0008_run_engine
Revises: 0006_approvals
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.models.base import UTCDateTime

revision: str = "0008_run_engine"
down_revision: str | Sequence[str] | None = "0006_approvals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Order matters: old `interrupted` (stopped by a shutdown) is mapped before
# `awaiting_approval` takes the name.
_STATUS_MAP = {
    "interrupted": "error",
    "completed": "success",
    "failed": "error",
    "awaiting_approval": "interrupted",
    # Runs that were running or stopped by a shutdown under the old model cannot be resumed.
    "running": "error",
}


def upgrade() -> None:
    """Add the queue columns to agent_runs, the graph id to conversations, tool_executions."""
    with op.batch_alter_table("agent_runs") as batch:
        batch.add_column(
            sa.Column("graph_id", sa.String(100), nullable=False, server_default="assistant")
        )
        batch.add_column(sa.Column("error_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("input", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("command", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("config", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("context", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("stream_modes", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("multitask_strategy", sa.String(20), nullable=False, server_default="reject")
        )
        batch.add_column(
            sa.Column("streamed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("retry_llm_errors", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("lease_owner", sa.String(100), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("available_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("cancel_action", sa.String(20), nullable=True))
        batch.add_column(sa.Column("base_checkpoint_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("created_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("result", sa.JSON(), nullable=True))
        batch.create_index("ix_agent_runs_status_available_at", ["status", "available_at"])
    runs = sa.table(
        "agent_runs",
        sa.column("status", sa.String),
        sa.column("created_at", UTCDateTime()),
        sa.column("started_at", UTCDateTime()),
    )
    op.execute(runs.update().values(created_at=runs.c.started_at))
    for old, new in _STATUS_MAP.items():
        op.execute(runs.update().where(runs.c.status == old).values(status=new))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(
            sa.Column("graph_id", sa.String(100), nullable=False, server_default="assistant")
        )
    # Locks held by turns of the old in-process model: no run can resume them.
    conversations = sa.table(
        "conversations",
        sa.column("active_run_id", sa.Uuid()),
        sa.column("active_run_heartbeat_at", UTCDateTime()),
    )
    op.execute(conversations.update().values(active_run_id=None, active_run_heartbeat_at=None))
    op.create_table(
        "tool_executions",
        sa.Column("tool_call_id", sa.String(200), nullable=False),
        sa.Column("thread_id", sa.String(100), nullable=False),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tool_call_id", name=op.f("pk_tool_executions")),
    )
    op.create_index("ix_tool_executions_thread_id", "tool_executions", ["thread_id"])


def downgrade() -> None:
    """Drop the ledger and the queue columns; statuses go back to the turn vocabulary."""
    op.drop_index("ix_tool_executions_thread_id", table_name="tool_executions")
    op.drop_table("tool_executions")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("graph_id")
    runs = sa.table("agent_runs", sa.column("status", sa.String))
    for new, old in (
        ("success", "completed"),
        ("error", "failed"),
        ("timeout", "failed"),
        ("cancelled", "failed"),
        ("pending", "failed"),
        ("interrupted", "awaiting_approval"),
    ):
        op.execute(runs.update().where(runs.c.status == new).values(status=old))
    with op.batch_alter_table("agent_runs") as batch:
        batch.drop_index("ix_agent_runs_status_available_at")
        for column in (
            "result",
            "created_at",
            "base_checkpoint_id",
            "cancel_action",
            "available_at",
            "lease_expires_at",
            "lease_owner",
            "attempt",
            "retry_llm_errors",
            "streamed",
            "multitask_strategy",
            "stream_modes",
            "context",
            "config",
            "command",
            "input",
            "error_status",
            "graph_id",
        ):
            batch.drop_column(column)
