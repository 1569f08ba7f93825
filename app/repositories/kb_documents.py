"""SQL for knowledge-base documents and their tags."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.models import DocumentStatus, KBCollection, KBDocument, KBDocumentTag
from app.repositories.kb_collections import readable_condition, writable_condition


def readable_document(user_id: uuid.UUID, is_admin: bool) -> ColumnElement[bool]:
    """Which documents a user may open: their own, and those of the shared collections they may
    read. Nobody, an admin included, opens another user's document outside a collection."""
    return or_(
        KBDocument.user_id == user_id,
        KBDocument.collection_id.in_(
            select(KBCollection.id).where(readable_condition(user_id, is_admin))
        ),
    )


def writable_document(user_id: uuid.UUID, is_admin: bool) -> ColumnElement[bool]:
    """Which documents a user may change or delete: their own, and those of the collections
    they may write to (every collection for an admin), whoever uploaded them."""
    return or_(
        KBDocument.user_id == user_id,
        and_(
            KBDocument.collection_id.is_not(None),
            KBDocument.collection_id.in_(
                select(KBCollection.id).where(writable_condition(user_id, is_admin))
            ),
        ),
    )


class KBDocumentRepository:
    """Reads and writes knowledge-base documents within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, document_id: uuid.UUID) -> KBDocument | None:
        """A document by id (any owner)."""
        return await self.session.get(KBDocument, document_id)

    async def get_readable(
        self, document_id: uuid.UUID, user_id: uuid.UUID, is_admin: bool
    ) -> KBDocument | None:
        """A document by id if the user may open it (see `readable_document`)."""
        result = await self.session.execute(
            select(KBDocument).where(
                KBDocument.id == document_id, readable_document(user_id, is_admin)
            )
        )
        return result.scalar_one_or_none()

    async def get_writable(
        self, document_id: uuid.UUID, user_id: uuid.UUID, is_admin: bool
    ) -> KBDocument | None:
        """A document by id if the user may change it (see `writable_document`)."""
        result = await self.session.execute(
            select(KBDocument).where(
                KBDocument.id == document_id, writable_document(user_id, is_admin)
            )
        )
        return result.scalar_one_or_none()

    async def get_by_hash(self, user_id: uuid.UUID, sha256: str) -> KBDocument | None:
        """The user's document with this content hash."""
        result = await self.session.execute(
            select(KBDocument).where(KBDocument.user_id == user_id, KBDocument.sha256 == sha256)
        )
        return result.scalar_one_or_none()

    async def add(self, document: KBDocument, tags: Sequence[str]) -> KBDocument:
        """Insert a document with its tags and flush so constraint violations surface here."""
        document.tag_rows = [KBDocumentTag(tag=tag) for tag in tags]
        self.session.add(document)
        await self.session.flush()
        return document

    async def set_tags(self, document: KBDocument, tags: Sequence[str]) -> None:
        """Replace a document's tags."""
        await self.session.refresh(document, ["tag_rows"])
        document.tag_rows = [KBDocumentTag(tag=tag) for tag in tags]
        await self.session.flush()

    async def delete(self, document: KBDocument) -> None:
        """Delete a document (tags cascade)."""
        await self.session.delete(document)
        await self.session.flush()

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        status: str | None,
        tag: str | None,
        collection: str | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[KBDocument], int]:
        """A page of the user's documents, newest first, with the total count."""
        conditions = [KBDocument.user_id == user_id]
        if status is not None:
            conditions.append(KBDocument.status == status)
        if collection is not None:
            conditions.append(KBDocument.collection == collection)
        if tag is not None:
            conditions.append(
                exists().where(KBDocumentTag.document_id == KBDocument.id, KBDocumentTag.tag == tag)
            )
        total = await self.session.scalar(
            select(func.count()).select_from(KBDocument).where(*conditions)
        )
        result = await self.session.execute(
            select(KBDocument)
            .where(*conditions)
            .order_by(KBDocument.created_at.desc(), KBDocument.id)
            .limit(limit)
            .offset(offset)
        )
        return result.scalars().all(), int(total or 0)

    async def page_in_collection(
        self, collection_id: uuid.UUID, *, status: str | None, limit: int, offset: int
    ) -> tuple[Sequence[KBDocument], int]:
        """A page of a shared collection's documents, newest first, with the total count."""
        conditions = [KBDocument.collection_id == collection_id]
        if status is not None:
            conditions.append(KBDocument.status == status)
        total = await self.session.scalar(
            select(func.count()).select_from(KBDocument).where(*conditions)
        )
        result = await self.session.execute(
            select(KBDocument)
            .where(*conditions)
            .order_by(KBDocument.created_at.desc(), KBDocument.id)
            .limit(limit)
            .offset(offset)
        )
        return result.scalars().all(), int(total or 0)

    async def failed(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The user's documents whose ingestion failed, oldest first."""
        result = await self.session.execute(
            select(KBDocument.id)
            .where(KBDocument.user_id == user_id, KBDocument.status == DocumentStatus.failed.value)
            .order_by(KBDocument.created_at)
        )
        return list(result.scalars().all())

    async def queued_ids(self) -> list[uuid.UUID]:
        """Documents waiting for the worker, oldest first."""
        result = await self.session.execute(
            select(KBDocument.id)
            .where(KBDocument.status == DocumentStatus.queued.value)
            .order_by(KBDocument.created_at)
        )
        return list(result.scalars().all())

    async def queued(self) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(document, owner) of the documents waiting for the worker, oldest first."""
        result = await self.session.execute(
            select(KBDocument.id, KBDocument.user_id)
            .where(KBDocument.status == DocumentStatus.queued.value)
            .order_by(KBDocument.created_at)
        )
        return [(row[0], row[1]) for row in result.all()]

    async def settled(self, user_id: uuid.UUID | None = None) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(document, owner) of the documents not waiting or in progress, oldest first."""
        query = select(KBDocument.id, KBDocument.user_id).where(
            KBDocument.status.in_([DocumentStatus.ready.value, DocumentStatus.failed.value])
        )
        if user_id is not None:
            query = query.where(KBDocument.user_id == user_id)
        result = await self.session.execute(query.order_by(KBDocument.created_at))
        return [(row[0], row[1]) for row in result.all()]

    async def requeue_interrupted(self) -> int:
        """Put documents left `processing` by a stop back in the queue; how many there were."""
        result = await self.session.execute(
            update(KBDocument)
            .where(KBDocument.status == DocumentStatus.processing.value)
            .values(status=DocumentStatus.queued.value)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def claim(self, document_id: uuid.UUID) -> bool:
        """Move a queued document to processing; False if another worker took it first."""
        result = await self.session.execute(
            update(KBDocument)
            .where(
                KBDocument.id == document_id,
                KBDocument.status == DocumentStatus.queued.value,
            )
            .values(status=DocumentStatus.processing.value, error=None, error_code=None)
        )
        return bool(getattr(result, "rowcount", 0))
