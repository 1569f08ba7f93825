"""SQL for invite codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Invite


class InviteRepository:
    """Reads and writes invites within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, invite: Invite) -> Invite:
        """Insert an invite."""
        self.session.add(invite)
        await self.session.flush()
        return invite

    @staticmethod
    def _open(code_hash: str, email: str, now: datetime) -> ColumnElement[bool]:
        return and_(
            Invite.code_hash == code_hash,
            Invite.used_at.is_(None),
            Invite.expires_at > now,
            (Invite.email.is_(None)) | (Invite.email == email),
        )

    async def usable(self, code_hash: str, email: str, now: datetime) -> bool:
        """Whether an unused, unexpired invite with this code is good for this email."""
        found = await self.session.scalar(
            select(Invite.id).where(self._open(code_hash, email, now))
        )
        return found is not None

    async def consume(self, code_hash: str, email: str, user_id: uuid.UUID, now: datetime) -> bool:
        """Mark an unused, unexpired invite (for this email, if it names one) as used, atomically.

        False when no such invite exists: two sign-ups racing for one code cannot both win.
        """
        result = await self.session.execute(
            update(Invite)
            .where(self._open(code_hash, email, now))
            .values(used_at=now, used_by=user_id)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)
