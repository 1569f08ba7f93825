"""Knowledge base: documents and their tags.

Revision ID: 0005_kb
Revises: 0004_feedback
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.models.base import UTCDateTime

revision: str = "0005_kb"
down_revision: str | Sequence[str] | None = "0004_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create kb_documents and kb_document_tags."""
    op.create_table(
        "kb_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("collection", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error_code", sa.String(50), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("index_name", sa.String(200), nullable=True),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_kb_documents_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_documents")),
        sa.UniqueConstraint("user_id", "sha256", name="uq_kb_documents_user_sha256"),
    )
    op.create_index(op.f("ix_kb_documents_user_id"), "kb_documents", ["user_id"])
    op.create_index(op.f("ix_kb_documents_collection"), "kb_documents", ["collection"])
    op.create_index(op.f("ix_kb_documents_status"), "kb_documents", ["status"])
    op.create_table(
        "kb_document_tags",
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["kb_documents.id"],
            name=op.f("fk_kb_document_tags_document_id_kb_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_id", "tag", name=op.f("pk_kb_document_tags")),
    )
    op.create_index(op.f("ix_kb_document_tags_tag"), "kb_document_tags", ["tag"])


def downgrade() -> None:
    """Drop kb_document_tags and kb_documents."""
    op.drop_index(op.f("ix_kb_document_tags_tag"), table_name="kb_document_tags")
    op.drop_table("kb_document_tags")
    op.drop_index(op.f("ix_kb_documents_status"), table_name="kb_documents")
    op.drop_index(op.f("ix_kb_documents_collection"), table_name="kb_documents")
    op.drop_index(op.f("ix_kb_documents_user_id"), table_name="kb_documents")
    op.drop_table("kb_documents")
