"""Shared knowledge-base collections: admins create and share them, members read or write.

A document uploaded into a collection carries the collection's id in every chunk's payload, and
a search admits those chunks only for callers who may read the collection: access is part of
the vector filter, never a step after retrieval.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.logging import get_logger
from app.models import (
    CollectionPermission,
    CollectionVisibility,
    DocumentStatus,
    KBCollection,
    KBDocument,
    User,
)
from app.repositories.kb_collections import KBCollectionRepository
from app.repositories.kb_documents import KBDocumentRepository
from app.services.kb.service import KnowledgeBase, Upload, normalise_collection

log = get_logger(__name__)

MAX_MEMBERS = 1000


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """A member as given by an admin: the user's email and what they may do."""

    email: str
    permission: CollectionPermission = CollectionPermission.read


@dataclass(frozen=True, slots=True)
class CollectionView:
    """A collection as shown to a caller: its members (by email) and what the caller may do."""

    collection: KBCollection
    members: list[tuple[str, str]]
    document_count: int
    can_write: bool


class CollectionService:
    """Create, share, list and delete collections; upload and list their documents."""

    def __init__(self, knowledge_base: KnowledgeBase) -> None:
        self.kb = knowledge_base

    @staticmethod
    def _require_admin(user: User) -> None:
        if not user.is_admin:
            raise Forbidden(
                "Only admins create, share and delete collections.", code="admin_required"
            )

    @staticmethod
    async def _resolve_members(
        repository: KBCollectionRepository, members: Sequence[MemberSpec]
    ) -> list[tuple[uuid.UUID, str]]:
        if len(members) > MAX_MEMBERS:
            raise Unprocessable(f"At most {MAX_MEMBERS} members.", code="too_many_members")
        wanted: dict[str, str] = {}
        for member in members:
            email = member.email.strip().lower()
            # Write implies read; the strongest permission given for an email wins.
            if wanted.get(email) != CollectionPermission.write.value:
                wanted[email] = member.permission.value
        found = await repository.users_by_email(list(wanted))
        missing = sorted(email for email in wanted if email not in found)
        if missing:
            raise Unprocessable(
                f"No user with the email {missing[0]!r}; invite them first.",
                code="unknown_member",
                meta={"emails": missing},
            )
        return [(found[email], permission) for email, permission in wanted.items()]

    async def _view(
        self, session: AsyncSession, collection: KBCollection, user: User
    ) -> CollectionView:
        repository = KBCollectionRepository(session)
        emails = await repository.emails([row.user_id for row in collection.member_rows])
        counts = await repository.document_counts([collection.id])
        return CollectionView(
            collection=collection,
            members=sorted(
                (emails[row.user_id], row.permission)
                for row in collection.member_rows
                if row.user_id in emails
            ),
            document_count=counts.get(collection.id, 0),
            can_write=await repository.can_write(collection, user.id, user.is_admin),
        )

    async def create(
        self,
        session: AsyncSession,
        user: User,
        *,
        name: str,
        visibility: CollectionVisibility,
        description: str | None = None,
        members: Sequence[MemberSpec] = (),
    ) -> CollectionView:
        """Create a collection (admins only); 409 when the name is taken."""
        self._require_admin(user)
        clean = normalise_collection(name)
        if clean is None:
            raise Unprocessable("The collection needs a name.", code="bad_collection")
        repository = KBCollectionRepository(session)
        resolved = await self._resolve_members(repository, members)
        if await repository.get_by_name(clean) is not None:
            raise self._taken(clean)
        collection = KBCollection(
            name=clean, description=description, visibility=visibility.value, created_by=user.id
        )
        try:
            await repository.add(collection)
        except IntegrityError:
            await session.rollback()
            raise self._taken(clean) from None
        await repository.set_members(collection, resolved)
        await session.commit()
        log.info("kb_collection_created", collection_id=str(collection.id))
        return await self._view(session, collection, user)

    @staticmethod
    def _taken(name: str) -> Conflict:
        return Conflict(f"A collection named {name!r} exists already.", code="collection_exists")

    async def get(
        self, session: AsyncSession, user: User, collection_id: uuid.UUID
    ) -> KBCollection:
        """A collection the user may read, or 404 (also for one they may not read)."""
        collection = await KBCollectionRepository(session).get_readable(
            collection_id, user.id, user.is_admin
        )
        if collection is None:
            raise NotFound(f"No collection with id {collection_id}.", code="collection_not_found")
        return collection

    async def read(
        self, session: AsyncSession, user: User, collection_id: uuid.UUID
    ) -> CollectionView:
        """A readable collection with its members and document count."""
        return await self._view(session, await self.get(session, user, collection_id), user)

    async def list_readable(
        self, session: AsyncSession, user: User, *, limit: int, offset: int
    ) -> tuple[list[CollectionView], int]:
        """The collections the user may read, by name."""
        items, total = await KBCollectionRepository(session).page(
            user.id, user.is_admin, limit=limit, offset=offset
        )
        return [await self._view(session, item, user) for item in items], total

    async def update(
        self,
        session: AsyncSession,
        user: User,
        collection_id: uuid.UUID,
        *,
        visibility: CollectionVisibility | None = None,
        description: str | None = None,
        set_description: bool = False,
        members: Sequence[MemberSpec] | None = None,
    ) -> CollectionView:
        """Share a collection: change its visibility, description or members (admins only).

        The members given replace the old ones. Nothing in the vector store changes: who may
        read is decided when a search builds its filter.
        """
        self._require_admin(user)
        collection = await self.get(session, user, collection_id)
        repository = KBCollectionRepository(session)
        if members is not None:
            await repository.set_members(
                collection, await self._resolve_members(repository, members)
            )
        if visibility is not None:
            collection.visibility = visibility.value
        if set_description:
            collection.description = description
        await session.commit()
        await session.refresh(collection)
        log.info("kb_collection_updated", collection_id=str(collection_id))
        return await self._view(session, collection, user)

    async def delete(self, session: AsyncSession, user: User, collection_id: uuid.UUID) -> int:
        """Delete a collection with its documents (their vectors first); how many there were."""
        self._require_admin(user)
        collection = await self.get(session, user, collection_id)
        repository = KBCollectionRepository(session)
        documents = await repository.documents(collection.id)
        index = await self.kb.index() if documents else None
        files = []
        for document in documents:
            await self.kb.cancel_ingestion(document.id)
            if index is not None:
                await index.delete_document(str(document.user_id), str(document.id))
            files.append(self.kb.file_path(document.user_id, document.id))
            await KBDocumentRepository(session).delete(document)
        await repository.delete(collection)
        await session.commit()
        for document in documents:
            # A rescan may have queued one again meanwhile; with its row gone it is dropped.
            await self.kb.cancel_ingestion(document.id)
        for path in files:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        log.info("kb_collection_deleted", collection_id=str(collection_id), documents=len(files))
        return len(files)

    async def upload(
        self, session: AsyncSession, user: User, collection_id: uuid.UUID, upload: Upload
    ) -> KBDocument:
        """Upload a document into a collection (admins, or members with write permission)."""
        collection = await self.get(session, user, collection_id)
        if not await KBCollectionRepository(session).can_write(collection, user.id, user.is_admin):
            raise Forbidden(
                f"You may read the collection {collection.name!r} but not add documents to it; "
                "ask an admin for write permission.",
                code="collection_read_only",
            )
        return await self.kb.upload(
            session,
            user.id,
            Upload(
                filename=upload.filename,
                data=upload.data,
                title=upload.title,
                tags=upload.tags,
                collection=collection.name,
                collection_id=collection.id,
                source_url=upload.source_url,
            ),
        )

    async def documents(
        self,
        session: AsyncSession,
        user: User,
        collection_id: uuid.UUID,
        *,
        status: DocumentStatus | None,
        limit: int,
        offset: int,
    ) -> tuple[list[KBDocument], int]:
        """A page of a readable collection's documents, newest first."""
        collection = await self.get(session, user, collection_id)
        items, total = await KBDocumentRepository(session).page_in_collection(
            collection.id,
            status=status.value if status is not None else None,
            limit=limit,
            offset=offset,
        )
        return list(items), total
