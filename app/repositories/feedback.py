"""SQL for feedback: upsert by (message, user), admin lists with filters, and stats."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Conversation, Feedback, FeedbackTag, Message, Rating
from app.repositories.usage import bucket_expression

_Q = TypeVar("_Q", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True, slots=True)
class FeedbackFilter:
    """Admin filters on feedback; None means any."""

    rating: Rating | None = None
    tag: str | None = None
    user_id: uuid.UUID | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class RatingCounts:
    """Up and down counts in one group (a day or a model)."""

    key: str | None
    up: int
    down: int
    avg_score: float | None


class FeedbackRepository:
    """Reads and writes feedback within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def message_for_user(self, message_id: uuid.UUID, user_id: uuid.UUID) -> Message | None:
        """The message if it is in one of the user's conversations (None otherwise)."""
        result = await self.session.execute(
            select(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id == message_id, Conversation.user_id == user_id)
        )
        return result.scalar_one_or_none()

    async def get_by_message_and_user(
        self, message_id: uuid.UUID, user_id: uuid.UUID
    ) -> Feedback | None:
        """The user's feedback on a message."""
        result = await self.session.execute(
            select(Feedback).where(Feedback.message_id == message_id, Feedback.user_id == user_id)
        )
        return result.scalar_one_or_none()

    async def add(self, feedback: Feedback) -> Feedback:
        """Insert feedback and flush, so the unique (message, user) constraint surfaces here."""
        self.session.add(feedback)
        await self.session.flush()
        return feedback

    async def for_messages(
        self, message_ids: Sequence[uuid.UUID], user_id: uuid.UUID
    ) -> dict[uuid.UUID, Feedback]:
        """The user's feedback on each of these messages, by message id."""
        if not message_ids:
            return {}
        result = await self.session.execute(
            select(Feedback).where(
                Feedback.message_id.in_(list(message_ids)), Feedback.user_id == user_id
            )
        )
        return {item.message_id: item for item in result.scalars().all()}

    def _filtered(self, query: _Q, filters: FeedbackFilter) -> _Q:
        if filters.rating is not None:
            query = query.where(Feedback.rating == filters.rating.value)
        if filters.user_id is not None:
            query = query.where(Feedback.user_id == filters.user_id)
        if filters.start is not None:
            query = query.where(Feedback.created_at >= filters.start)
        if filters.end is not None:
            query = query.where(Feedback.created_at < filters.end)
        if filters.tag is not None:
            query = query.where(
                Feedback.id.in_(
                    select(FeedbackTag.feedback_id).where(FeedbackTag.tag == filters.tag)
                )
            )
        return query

    async def list_page(
        self, filters: FeedbackFilter, *, limit: int, offset: int
    ) -> tuple[list[tuple[Feedback, str | None]], int]:
        """A page of feedback, newest first, each with the model of its message; and the total."""
        total = await self.session.scalar(
            self._filtered(select(func.count()).select_from(Feedback), filters)
        )
        query = self._filtered(
            select(Feedback, Message.model).join(Message, Message.id == Feedback.message_id),
            filters,
        )
        result = await self.session.execute(
            query.order_by(Feedback.created_at.desc(), Feedback.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [(row[0], row[1]) for row in result.all()], int(total or 0)

    def _counts(self) -> tuple[Any, ...]:
        return (
            func.coalesce(func.sum(case((Feedback.rating == Rating.up.value, 1), else_=0)), 0),
            func.coalesce(func.sum(case((Feedback.rating == Rating.down.value, 1), else_=0)), 0),
            func.avg(Feedback.score),
        )

    async def counts_by_day(self, filters: FeedbackFilter) -> list[tuple[date, RatingCounts]]:
        """Up/down counts and average score per UTC day, oldest first."""
        dialect = self.session.get_bind().dialect.name
        day = bucket_expression(dialect, Feedback.created_at, "day").label("day")
        query = self._filtered(select(day, *self._counts()), filters).group_by(day).order_by(day)
        rows = (await self.session.execute(query)).all()
        return [
            (
                date.fromisoformat(str(row[0])[:10]),
                RatingCounts(str(row[0])[:10], int(row[1]), int(row[2]), _avg(row[3])),
            )
            for row in rows
        ]

    async def counts_by_model(self, filters: FeedbackFilter) -> list[RatingCounts]:
        """Up/down counts and average score per model of the rated message, most rated first."""
        query = self._filtered(
            select(Message.model, *self._counts()).join(Message, Message.id == Feedback.message_id),
            filters,
        ).group_by(Message.model)
        rows = (await self.session.execute(query)).all()
        counts = [RatingCounts(row[0], int(row[1]), int(row[2]), _avg(row[3])) for row in rows]
        return sorted(counts, key=lambda c: (-(c.up + c.down), c.key or ""))

    async def totals(self, filters: FeedbackFilter) -> RatingCounts:
        """Up/down counts and average score over everything matching."""
        row = (await self.session.execute(self._filtered(select(*self._counts()), filters))).one()
        return RatingCounts(None, int(row[0]), int(row[1]), _avg(row[2]))

    async def top_tags(self, filters: FeedbackFilter, limit: int) -> list[tuple[str, int]]:
        """The most used tags, with their counts."""
        uses = func.count().label("uses")
        query = (
            select(FeedbackTag.tag, uses)
            .where(FeedbackTag.feedback_id.in_(self._filtered(select(Feedback.id), filters)))
            .group_by(FeedbackTag.tag)
            .order_by(uses.desc(), FeedbackTag.tag)
            .limit(limit)
        )
        return [(str(row[0]), int(row[1])) for row in (await self.session.execute(query)).all()]


def _avg(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
