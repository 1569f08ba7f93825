"""Knowledge base: shared collections (admin-created, with members) and the collection a
document belongs to.

Revision ID: 0019_kb_collections_api
Revises: 0015_langgraph_api
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.models.base import UTCDateTime

revision: str = "0019_kb_collections_api"
down_revision: str | Sequence[str] | None = "0018_assistants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create kb_collections and kb_collection_members; add kb_documents.collection_id."""
    op.create_table(
        "kb_collections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("visibility", sa.String(20), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name="fk_kb_collections_created_by_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_kb_collections"),
        sa.UniqueConstraint("name", name="uq_kb_collections_name"),
    )
    op.create_table(
        "kb_collection_members",
        sa.Column("collection_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("permission", sa.String(10), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["kb_collections.id"],
            name="fk_kb_collection_members_collection_id_kb_collections",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_kb_collection_members_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("collection_id", "user_id", name="pk_kb_collection_members"),
    )
    op.create_index("ix_kb_collection_members_user_id", "kb_collection_members", ["user_id"])
    with op.batch_alter_table("kb_documents") as batch:
        batch.add_column(sa.Column("collection_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            "fk_kb_documents_collection_id_kb_collections",
            "kb_collections",
            ["collection_id"],
            ["id"],
        )
        batch.create_index("ix_kb_documents_collection_id", ["collection_id"])


def downgrade() -> None:
    """Drop kb_documents.collection_id and the collection tables."""
    with op.batch_alter_table("kb_documents") as batch:
        batch.drop_index("ix_kb_documents_collection_id")
        batch.drop_constraint("fk_kb_documents_collection_id_kb_collections", type_="foreignkey")
        batch.drop_column("collection_id")
    op.drop_index("ix_kb_collection_members_user_id", table_name="kb_collection_members")
    op.drop_table("kb_collection_members")
    op.drop_table("kb_collections")
