"""Feedback of users on assistant messages: a rating, an optional score, comment and tags."""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, IdMixin, TimestampMixin


class Rating(StrEnum):
    """Thumbs up or down."""

    up = "up"
    down = "down"


class Feedback(IdMixin, TimestampMixin, Base):
    """One user's feedback on one assistant message; a second submission updates it."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("message_id", "user_id", name="uq_feedback_message_id_user_id"),
        Index("ix_feedback_created_at", "created_at"),
    )

    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    rating: Mapped[str] = mapped_column(String(8), index=True)
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    tag_rows: Mapped[list[FeedbackTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="FeedbackTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        """The feedback's tags, sorted."""
        return [row.tag for row in self.tag_rows]


class FeedbackTag(Base):
    """One tag of one feedback (a row per tag so admins can filter and count by tag in SQL)."""

    __tablename__ = "feedback_tags"

    feedback_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("feedback.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
