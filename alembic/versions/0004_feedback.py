"""Feedback on assistant messages, with tags.

Revision ID: 0004_feedback
Revises: 0003_usage
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.models.base import UTCDateTime

revision: str = "0004_feedback"
down_revision: str | Sequence[str] | None = "0003_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create feedback and feedback_tags."""
    op.create_table(
        "feedback",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_feedback_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feedback_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_feedback_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("message_id", "user_id", name="uq_feedback_message_id_user_id"),
    )
    op.create_index(op.f("ix_feedback_message_id"), "feedback", ["message_id"])
    op.create_index(op.f("ix_feedback_user_id"), "feedback", ["user_id"])
    op.create_index(op.f("ix_feedback_conversation_id"), "feedback", ["conversation_id"])
    op.create_index(op.f("ix_feedback_rating"), "feedback", ["rating"])
    op.create_index(op.f("ix_feedback_created_at"), "feedback", ["created_at"])
    op.create_table(
        "feedback_tags",
        sa.Column("feedback_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["feedback_id"],
            ["feedback.id"],
            name=op.f("fk_feedback_tags_feedback_id_feedback"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("feedback_id", "tag", name=op.f("pk_feedback_tags")),
    )
    op.create_index(op.f("ix_feedback_tags_tag"), "feedback_tags", ["tag"])


def downgrade() -> None:
    """Drop feedback_tags and feedback."""
    op.drop_index(op.f("ix_feedback_tags_tag"), table_name="feedback_tags")
    op.drop_table("feedback_tags")
    for column in ("created_at", "rating", "conversation_id", "user_id", "message_id"):
        op.drop_index(op.f(f"ix_feedback_{column}"), table_name="feedback")
    op.drop_table("feedback")
