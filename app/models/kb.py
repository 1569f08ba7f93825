"""Knowledge-base documents and their tags; chunks and vectors live in Qdrant."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, IdMixin, TimestampMixin


class DocumentStatus(StrEnum):
    """Where a document is in the ingestion pipeline."""

    queued = "queued"
    processing = "processing"
    ready = "ready"
    failed = "failed"


class KBDocument(IdMixin, TimestampMixin, Base):
    """One uploaded file of one user; its original bytes are kept under the data dir."""

    __tablename__ = "kb_documents"
    __table_args__ = (UniqueConstraint("user_id", "sha256", name="uq_kb_documents_user_sha256"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    collection: Mapped[str | None] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20), default=DocumentStatus.queued.value, index=True)
    error_code: Mapped[str | None] = mapped_column(String(50))
    error: Mapped[str | None] = mapped_column(Text)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    page_count: Mapped[int | None] = mapped_column(Integer)
    index_name: Mapped[str | None] = mapped_column(String(200))
    # Raised each time the content is replaced; chunk ids include it, so the chunks of a new
    # version are written next to the old ones and the old ones removed only afterwards.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The web page or file the document was fetched from (POST /kb/documents/url).
    source_url: Mapped[str | None] = mapped_column(String(2000))
    processed_at: Mapped[datetime | None] = mapped_column()
    tag_rows: Mapped[list[KBDocumentTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="KBDocumentTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        """The document's tags, sorted."""
        return [row.tag for row in self.tag_rows]


class KBDocumentTag(Base):
    """One tag of one document (a row per tag so lists can filter by tag in SQL)."""

    __tablename__ = "kb_document_tags"

    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("kb_documents.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
