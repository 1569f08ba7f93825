"""SQL for shared knowledge-base collections and their members."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.models import (
    CollectionPermission,
    CollectionVisibility,
    KBCollection,
    KBCollectionMember,
    KBDocument,
    User,
)


def _member(user_id: uuid.UUID, *permissions: str) -> ColumnElement[bool]:
    condition = and_(
        KBCollectionMember.collection_id == KBCollection.id,
        KBCollectionMember.user_id == user_id,
    )
    if permissions:
        condition = and_(condition, KBCollectionMember.permission.in_(permissions))
    return exists().where(condition)


def readable_condition(user_id: uuid.UUID, is_admin: bool) -> ColumnElement[bool]:
    """Which collections a user may read: all for an admin; else the ones they are a member
    of, and the shared ones without members."""
    if is_admin:
        return KBCollection.id.is_not(None)
    has_members = exists().where(KBCollectionMember.collection_id == KBCollection.id)
    return or_(
        _member(user_id),
        and_(KBCollection.visibility == CollectionVisibility.shared.value, ~has_members),
    )


def writable_condition(user_id: uuid.UUID, is_admin: bool) -> ColumnElement[bool]:
    """Which collections a user may change the documents of: all for an admin; else the ones
    they are a member of with write permission."""
    if is_admin:
        return KBCollection.id.is_not(None)
    return _member(user_id, CollectionPermission.write.value)


class KBCollectionRepository:
    """Reads and writes collections within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, collection_id: uuid.UUID) -> KBCollection | None:
        """A collection by id."""
        return await self.session.get(KBCollection, collection_id)

    async def get_by_name(self, name: str) -> KBCollection | None:
        """A collection by its (unique) name."""
        result = await self.session.execute(select(KBCollection).where(KBCollection.name == name))
        return result.scalar_one_or_none()

    async def get_readable(
        self, collection_id: uuid.UUID, user_id: uuid.UUID, is_admin: bool
    ) -> KBCollection | None:
        """The collection if the user may read it."""
        result = await self.session.execute(
            select(KBCollection).where(
                KBCollection.id == collection_id, readable_condition(user_id, is_admin)
            )
        )
        return result.scalar_one_or_none()

    async def readable_ids(self, user_id: uuid.UUID, is_admin: bool) -> list[str]:
        """The ids of every collection the user may read (what the vector filter admits)."""
        result = await self.session.execute(
            select(KBCollection.id).where(readable_condition(user_id, is_admin))
        )
        return [str(value) for value in result.scalars().all()]

    async def can_write(self, collection: KBCollection, user_id: uuid.UUID, is_admin: bool) -> bool:
        """Whether the user may upload documents into the collection."""
        if is_admin:
            return True
        found = await self.session.scalar(
            select(KBCollection.id).where(
                KBCollection.id == collection.id, writable_condition(user_id, is_admin)
            )
        )
        return found is not None

    async def page(
        self, user_id: uuid.UUID, is_admin: bool, *, limit: int, offset: int
    ) -> tuple[Sequence[KBCollection], int]:
        """A page of the collections the user may read, by name, with the total count."""
        condition = readable_condition(user_id, is_admin)
        total = await self.session.scalar(
            select(func.count()).select_from(KBCollection).where(condition)
        )
        result = await self.session.execute(
            select(KBCollection)
            .where(condition)
            .order_by(KBCollection.name, KBCollection.id)
            .limit(limit)
            .offset(offset)
        )
        return result.scalars().all(), int(total or 0)

    async def add(self, collection: KBCollection) -> KBCollection:
        """Insert a collection and flush so a duplicate name surfaces here."""
        self.session.add(collection)
        await self.session.flush()
        return collection

    async def set_members(
        self, collection: KBCollection, members: Sequence[tuple[uuid.UUID, str]]
    ) -> None:
        """Replace a collection's members with (user id, permission) pairs."""
        await self.session.refresh(collection, ["member_rows"])
        collection.member_rows = [
            KBCollectionMember(user_id=user_id, permission=permission)
            for user_id, permission in members
        ]
        await self.session.flush()

    async def users_by_email(self, emails: Sequence[str]) -> dict[str, uuid.UUID]:
        """Lower-cased email → id of the users with these emails."""
        if not emails:
            return {}
        result = await self.session.execute(
            select(User.email, User.id).where(func.lower(User.email).in_(emails))
        )
        return {str(email).lower(): user_id for email, user_id in result.all()}

    async def emails(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Id → email of these users."""
        if not user_ids:
            return {}
        result = await self.session.execute(
            select(User.id, User.email).where(User.id.in_(user_ids))
        )
        return {user_id: str(email) for user_id, email in result.all()}

    async def documents(self, collection_id: uuid.UUID) -> list[KBDocument]:
        """Every document in the collection."""
        result = await self.session.execute(
            select(KBDocument).where(KBDocument.collection_id == collection_id)
        )
        return list(result.scalars().all())

    async def document_counts(self, collection_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """How many documents each collection holds."""
        if not collection_ids:
            return {}
        result = await self.session.execute(
            select(KBDocument.collection_id, func.count())
            .where(KBDocument.collection_id.in_(collection_ids))
            .group_by(KBDocument.collection_id)
        )
        return {row[0]: int(row[1]) for row in result.all() if row[0] is not None}

    async def delete(self, collection: KBCollection) -> None:
        """Delete a collection (its members cascade; its documents must be gone already)."""
        await self.session.delete(collection)
        await self.session.flush()
