"""Tool switches: admins turn tools, or whole MCP servers, on and off at runtime.

Revision ID: 0020_tool_settings
Revises: 0015_langgraph_api
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.models.base import UTCDateTime

revision: str = "0020_tool_settings"
down_revision: str | Sequence[str] | None = "0019_kb_collections_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create tool_settings."""
    op.create_table(
        "tool_settings",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name="fk_tool_settings_updated_by_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("name", name="pk_tool_settings"),
    )


def downgrade() -> None:
    """Drop tool_settings."""
    op.drop_table("tool_settings")
