"""SQL for refresh-token families."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import RefreshToken


class RefreshTokenRepository:
    """Reads and writes refresh tokens within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: RefreshToken) -> RefreshToken:
        """Insert a refresh token."""
        self.session.add(token)
        await self.session.flush()
        return token

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this hash."""
        result = await self.session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def mark_rotated(self, token_id: uuid.UUID, when: datetime) -> bool:
        """Mark a token used, atomically: False when another request rotated it first."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=when)
        )
        return bool(getattr(result, "rowcount", 0))

    async def revoke_family(self, family_id: uuid.UUID, when: datetime) -> None:
        """Revoke every token of a family."""
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=when)
        )

    async def revoke_user(
        self, user_id: uuid.UUID, when: datetime, *, keep_family: uuid.UUID | None = None
    ) -> None:
        """Revoke every family of a user, optionally sparing the current one."""
        query = update(RefreshToken).where(
            RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
        )
        if keep_family is not None:
            query = query.where(RefreshToken.family_id != keep_family)
        await self.session.execute(query.values(revoked_at=when))

    async def family_revoked(self, family_id: uuid.UUID) -> bool:
        """Whether a family was revoked (logout, theft detection, deactivation)."""
        result = await self.session.execute(
            select(RefreshToken.id)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_not(None))
            .limit(1)
        )
        return result.first() is not None

    async def count_active_users(self, since: datetime) -> int:
        """Distinct users issued a refresh token (sign-in, sign-up or renewal) since a time."""
        result = await self.session.execute(
            select(func.count(func.distinct(RefreshToken.user_id))).where(
                RefreshToken.created_at >= since
            )
        )
        return int(result.scalar_one())
