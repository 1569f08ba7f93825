"""Request and response bodies of /feedback."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, field_validator

from app.models import Feedback, Rating

MAX_COMMENT_CHARS = 2000
MAX_TAGS = 10
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64),
]


class FeedbackIn(BaseModel):
    """A rating of an assistant message; sending it again for the same message replaces it."""

    model_config = ConfigDict(extra="forbid")

    message_id: uuid.UUID
    rating: Rating
    score: Annotated[StrictInt | None, Field(ge=1, le=5, description="1 (bad) to 5 (great)")] = None
    comment: Annotated[str | None, Field(max_length=MAX_COMMENT_CHARS)] = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)

    @field_validator("comment")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None


class MessageFeedbackOut(BaseModel):
    """The caller's feedback as shown on a message."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    rating: Rating
    score: int | None
    comment: str | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime


class FeedbackOut(MessageFeedbackOut):
    """A stored feedback."""

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    user_id: uuid.UUID


class AdminFeedbackOut(FeedbackOut):
    """Feedback as admins list it, with the model that wrote the rated answer."""

    model: str | None

    @classmethod
    def of(cls, feedback: Feedback, model: str | None) -> AdminFeedbackOut:
        """Build from a row and its message's model."""
        return cls.model_validate(
            {**FeedbackOut.model_validate(feedback).model_dump(), "model": model}
        )


class RatingCountsOut(BaseModel):
    """Up/down counts, their shares of the total, and the average score."""

    up: int
    down: int
    total: int
    up_share: float
    down_share: float
    avg_score: float | None


class DayRatingsOut(RatingCountsOut):
    """Ratings given on one UTC day."""

    day: str


class ModelRatingsOut(RatingCountsOut):
    """Ratings of the answers of one model."""

    model: str | None


class TagCountOut(BaseModel):
    """How often a tag was used."""

    tag: str
    count: int


class FeedbackStatsOut(BaseModel):
    """Feedback statistics over a range (admin)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime | None = Field(alias="from")
    to: datetime | None
    totals: RatingCountsOut
    by_day: list[DayRatingsOut]
    by_model: list[ModelRatingsOut]
    top_tags: list[TagCountOut]
