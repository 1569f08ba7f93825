"""Knowledge base: a version number per document (raised when its content is replaced) and
the URL a document was fetched from.

Revision ID: 0010_kb_collections
Revises: 0012_retention
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010_kb_collections"
down_revision: str | Sequence[str] | None = "0012_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add kb_documents.version (1 for every existing document) and source_url."""
    # A database stamped back to an older revision (the old multi-head stamps) runs this again.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("kb_documents")}
    if "version" not in columns:
        op.add_column(
            "kb_documents",
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
        )
    if "source_url" not in columns:
        op.add_column("kb_documents", sa.Column("source_url", sa.String(2000), nullable=True))


def downgrade() -> None:
    """Drop kb_documents.version and source_url."""
    with op.batch_alter_table("kb_documents") as batch:
        batch.drop_column("source_url")
        batch.drop_column("version")
