"""Knowledge-base documents, their tags and shared collections; chunks live in Qdrant."""

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
    # The shared collection the document belongs to (its `collection` then names it); None for
    # a document only its uploader reads.
    collection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("kb_collections.id"), index=True
    )
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


class CollectionVisibility(StrEnum):
    """Who may read a collection: its members only, or every user (or only its members)."""

    private = "private"
    shared = "shared"


class CollectionPermission(StrEnum):
    """What a member may do in a collection: search it, or also upload documents into it."""

    read = "read"
    write = "write"


class KBCollection(IdMixin, TimestampMixin, Base):
    """A collection of documents shared beyond their uploader, created by an admin.

    Private: readable by its members only. Shared: readable by every user, or by its members
    only when it has any. Admins read and write every collection.
    """

    __tablename__ = "kb_collections"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    visibility: Mapped[str] = mapped_column(String(20), default=CollectionVisibility.private.value)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    member_rows: Mapped[list[KBCollectionMember]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="KBCollectionMember.user_id"
    )


class KBCollectionMember(Base):
    """One user's permission in one collection."""

    __tablename__ = "kb_collection_members"

    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("kb_collections.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    permission: Mapped[str] = mapped_column(String(10), default=CollectionPermission.read.value)
