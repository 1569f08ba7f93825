"""SQL for conversations, their messages and agent runs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AgentRun, Conversation, Message, RunStatus


class ConversationRepository:
    """Reads and writes conversations within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, conversation: Conversation) -> Conversation:
        """Insert a conversation."""
        self.session.add(conversation)
        await self.session.flush()
        return conversation

    async def get_for_user(
        self, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> Conversation | None:
        """The user's conversation with this id (None for another user's)."""
        result = await self.session.execute(
            select(Conversation).where(
                Conversation.id == conversation_id, Conversation.user_id == user_id
            )
        )
        return result.scalar_one_or_none()

    async def all_for_user(
        self, user_id: uuid.UUID, ids: Sequence[uuid.UUID] | None = None
    ) -> Sequence[Conversation]:
        """The user's conversations (only `ids`, when given), most recently updated first."""
        query = select(Conversation).where(Conversation.user_id == user_id)
        if ids is not None:
            query = query.where(Conversation.id.in_(list(ids)))
        result = await self.session.execute(
            query.order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        )
        return result.scalars().all()

    async def list_for_user(
        self, user_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[tuple[Conversation, int]], int]:
        """A page of the user's conversations, most recently active first, with message counts."""
        total = await self.session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.user_id == user_id)
        )
        counts = (
            select(Message.conversation_id, func.count().label("n"))
            .group_by(Message.conversation_id)
            .subquery()
        )
        result = await self.session.execute(
            select(Conversation, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.conversation_id == Conversation.id)
            .where(Conversation.user_id == user_id)
            .order_by(
                Conversation.last_activity_at.desc(),
                Conversation.created_at.desc(),
                Conversation.id.desc(),
            )
            .limit(limit)
            .offset(offset)
        )
        return [(row[0], int(row[1])) for row in result.all()], int(total or 0)

    async def acquire(
        self,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        run_id: uuid.UUID,
        now: datetime,
        stale_before: datetime,
    ) -> bool:
        """Atomically mark the conversation as running `run_id`: False if another turn holds it.

        One conditional UPDATE, so it holds across processes; a lock whose heartbeat is older
        than `stale_before` belongs to a crashed process and is taken over.
        """
        result = await self.session.execute(
            update(Conversation)
            .where(
                Conversation.id == conversation_id,
                Conversation.user_id == user_id,
                or_(
                    Conversation.active_run_id.is_(None),
                    Conversation.active_run_heartbeat_at < stale_before,
                ),
            )
            .values(active_run_id=run_id, active_run_heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def active_run_of(self, conversation_id: uuid.UUID) -> uuid.UUID | None:
        """The run holding the conversation (read before a takeover)."""
        return await self.session.scalar(
            select(Conversation.active_run_id).where(Conversation.id == conversation_id)
        )

    async def heartbeat(self, conversation_id: uuid.UUID, run_id: uuid.UUID, now: datetime) -> None:
        """Refresh the lock of a running turn."""
        await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.active_run_id == run_id)
            .values(active_run_heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )

    async def release(self, conversation_id: uuid.UUID, run_id: uuid.UUID, now: datetime) -> None:
        """Unlock the conversation if `run_id` still holds it, and record the activity."""
        await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.active_run_id == run_id)
            .values(active_run_id=None, active_run_heartbeat_at=None, last_activity_at=now)
            .execution_options(synchronize_session=False)
        )

    async def stale_locks(self, stale_before: datetime) -> Sequence[tuple[uuid.UUID, uuid.UUID]]:
        """(conversation id, run id) of locks whose heartbeat stopped before `stale_before`."""
        result = await self.session.execute(
            select(Conversation.id, Conversation.active_run_id).where(
                Conversation.active_run_id.is_not(None),
                or_(
                    Conversation.active_run_heartbeat_at.is_(None),
                    Conversation.active_run_heartbeat_at < stale_before,
                ),
            )
        )
        return [(row[0], row[1]) for row in result.all() if row[1] is not None]

    async def release_stale(
        self, conversation_id: uuid.UUID, run_id: uuid.UUID, stale_before: datetime
    ) -> bool:
        """Unlock a conversation whose lock by `run_id` is still stale (False if it moved on)."""
        result = await self.session.execute(
            update(Conversation)
            .where(
                Conversation.id == conversation_id,
                Conversation.active_run_id == run_id,
                or_(
                    Conversation.active_run_heartbeat_at.is_(None),
                    Conversation.active_run_heartbeat_at < stale_before,
                ),
            )
            .values(active_run_id=None, active_run_heartbeat_at=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def delete_if_idle(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Delete the conversation unless a turn holds it (one statement, across processes)."""
        result = await self.session.execute(
            delete(Conversation)
            .where(
                Conversation.id == conversation_id,
                Conversation.user_id == user_id,
                Conversation.active_run_id.is_(None),
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1


class MessageRepository:
    """Reads and writes stored messages within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next_position(self, conversation_id: uuid.UUID) -> int:
        """The position after the conversation's last message (turns on it are serialised)."""
        last = await self.session.scalar(
            select(func.max(Message.position)).where(Message.conversation_id == conversation_id)
        )
        return int(last) + 1 if last is not None else 0

    async def last(self, conversation_id: uuid.UUID) -> Message | None:
        """The conversation's latest message."""
        result = await self.session.execute(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.position.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def add(self, message: Message) -> Message:
        """Insert a message."""
        self.session.add(message)
        await self.session.flush()
        return message

    async def move_to_end(self, conversation_id: uuid.UUID, run_id: uuid.UUID) -> None:
        """Put the run's own messages after every other message of the conversation (a run
        queued behind another one starts after that one answered)."""
        later = await self.session.scalar(
            select(func.max(Message.position)).where(
                Message.conversation_id == conversation_id, Message.run_id != run_id
            )
        )
        if later is None:
            return
        await self.session.execute(
            update(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.run_id == run_id,
                Message.position < later,
            )
            .values(position=later + 1)
            .execution_options(synchronize_session=False)
        )

    async def delete_for_run(self, conversation_id: uuid.UUID, run_id: uuid.UUID) -> None:
        """Remove the messages a run added (a rolled-back run)."""
        await self.session.execute(
            delete(Message).where(
                Message.conversation_id == conversation_id, Message.run_id == run_id
            )
        )

    async def list_for_conversation(self, conversation_id: uuid.UUID) -> Sequence[Message]:
        """The conversation's messages in order."""
        result = await self.session.execute(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.position, Message.created_at)
        )
        return result.scalars().all()


class AgentRunRepository:
    """Reads and writes agent runs within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, run: AgentRun) -> AgentRun:
        """Insert a run."""
        self.session.add(run)
        await self.session.flush()
        return run

    async def get(self, run_id: uuid.UUID) -> AgentRun | None:
        """The run with this id."""
        return await self.session.get(AgentRun, run_id)

    async def finish(self, run_id: uuid.UUID, values: dict[str, Any]) -> None:
        """Record how a run ended (only a run still marked running)."""
        await self.session.execute(
            update(AgentRun)
            .where(and_(AgentRun.id == run_id, AgentRun.status == RunStatus.running.value))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def _rowcount(result: Any) -> int:
    if isinstance(result, CursorResult):
        return int(result.rowcount)
    return int(getattr(result, "rowcount", 0))
