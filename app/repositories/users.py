"""SQL for users."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Role, User


class UserRepository:
    """Reads and writes users within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with this id."""
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        """The user with this (normalised) email."""
        result = await self.session.execute(select(User).where(User.email == email))
        return result.scalar_one_or_none()

    async def add(self, user: User) -> User:
        """Insert a user and flush so constraint violations surface here."""
        self.session.add(user)
        await self.session.flush()
        return user

    async def delete(self, user: User) -> None:
        """Delete a user (their sessions cascade)."""
        await self.session.delete(user)
        await self.session.flush()

    async def list(self, *, limit: int, offset: int) -> tuple[Sequence[User], int]:
        """A page of users, oldest first, with the total count."""
        total = await self.session.scalar(select(func.count()).select_from(User))
        result = await self.session.execute(
            select(User).order_by(User.created_at, User.id).limit(limit).offset(offset)
        )
        return result.scalars().all(), int(total or 0)

    async def count_admins(self, *, active_only: bool = False) -> int:
        """How many admins there are."""
        query = select(func.count()).select_from(User).where(User.role == Role.admin.value)
        if active_only:
            query = query.where(User.is_active.is_(True))
        return int(await self.session.scalar(query) or 0)
