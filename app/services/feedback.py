"""Feedback on assistant messages: submit (create or update), admin lists and stats."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.errors import BadRequest, NotFound
from app.core.logging import get_logger
from app.core.resources import Resources
from app.models import Feedback, FeedbackTag, Rating, User
from app.repositories.feedback import FeedbackFilter, FeedbackRepository, RatingCounts

log = get_logger(__name__)

TOP_TAGS = 10


@dataclass(frozen=True, slots=True)
class FeedbackInput:
    """One submission: the rating is required, the rest optional (a resubmission replaces all)."""

    message_id: uuid.UUID
    rating: Rating
    score: int | None = None
    comment: str | None = None
    tags: Sequence[str] = ()


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _counts_json(counts: RatingCounts) -> dict[str, Any]:
    total = counts.up + counts.down
    return {
        "up": counts.up,
        "down": counts.down,
        "total": total,
        "up_share": _share(counts.up, total),
        "down_share": _share(counts.down, total),
        "avg_score": counts.avg_score,
    }


class FeedbackService:
    """Feedback use cases within one database session."""

    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock
        self.feedback = FeedbackRepository(session)

    async def submit(self, user: User, data: FeedbackInput) -> tuple[Feedback, bool]:
        """Rate an assistant message of one's own conversation; (feedback, created).

        Another user's message is 404 (its existence is not revealed); a user message is 400.
        A second submission by the same user replaces the first.
        """
        message = await self.feedback.message_for_user(data.message_id, user.id)
        if message is None:
            raise NotFound(f"No message with id {data.message_id}.", code="message_not_found")
        if message.role != "assistant":
            raise BadRequest(
                "Feedback is for the assistant's answers; this is a "
                f"{message.role} message. Send the id of an assistant message.",
                code="not_an_assistant_message",
            )
        now = self.clock.now()
        existing = await self.feedback.get_by_message_and_user(message.id, user.id)
        if existing is None:
            feedback = Feedback(
                message_id=message.id,
                user_id=user.id,
                conversation_id=message.conversation_id,
                created_at=now,
                tag_rows=[],
            )
            self._apply(feedback, data, now)
            try:
                await self.feedback.add(feedback)
                await self.session.commit()
            except IntegrityError:
                # A concurrent first submission won: update it instead.
                await self.session.rollback()
                existing = await self.feedback.get_by_message_and_user(message.id, user.id)
                if existing is None:
                    raise
            else:
                log.info("feedback_created", message_id=str(message.id), rating=data.rating.value)
                return feedback, True
        self._apply(existing, data, now)
        await self.session.commit()
        log.info("feedback_updated", message_id=str(message.id), rating=data.rating.value)
        return existing, False

    @staticmethod
    def _apply(feedback: Feedback, data: FeedbackInput, now: datetime) -> None:
        feedback.rating = data.rating.value
        feedback.score = data.score
        feedback.comment = data.comment
        feedback.updated_at = now
        wanted = list(dict.fromkeys(data.tags))
        kept = [row for row in feedback.tag_rows if row.tag in wanted]
        have = {row.tag for row in kept}
        feedback.tag_rows = kept + [FeedbackTag(tag=tag) for tag in wanted if tag not in have]

    async def for_messages(
        self, message_ids: Sequence[uuid.UUID], user_id: uuid.UUID
    ) -> dict[uuid.UUID, Feedback]:
        """The user's feedback on each of these messages (for showing it with the history)."""
        return await self.feedback.for_messages(message_ids, user_id)

    async def list_page(
        self, filters: FeedbackFilter, *, limit: int, offset: int
    ) -> tuple[list[tuple[Feedback, str | None]], int]:
        """A page of feedback (admin), newest first, each with its message's model."""
        return await self.feedback.list_page(filters, limit=limit, offset=offset)

    async def stats(self, filters: FeedbackFilter) -> dict[str, Any]:
        """Counts and shares of up/down per day and per model, average score, most used tags."""
        totals = await self.feedback.totals(filters)
        by_day = await self.feedback.counts_by_day(filters)
        by_model = await self.feedback.counts_by_model(filters)
        tags = await self.feedback.top_tags(filters, TOP_TAGS)
        return {
            "from": filters.start.isoformat() if filters.start else None,
            "to": filters.end.isoformat() if filters.end else None,
            "totals": _counts_json(totals),
            "by_day": [{"day": day.isoformat(), **_counts_json(c)} for day, c in by_day],
            "by_model": [{"model": c.key, **_counts_json(c)} for c in by_model],
            "top_tags": [{"tag": tag, "count": count} for tag, count in tags],
        }


async def feedback_on_messages(
    resources: Resources, user_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Feedback]:
    """A user's feedback on these messages, by message id (shown with the conversation)."""
    async with resources.sessionmaker() as session:
        return await FeedbackRepository(session).for_messages(message_ids, user_id)
