"""Request and response bodies of the agent API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.api.schemas.approvals import ApprovalOut
from app.api.schemas.feedback import MessageFeedbackOut

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class QueryIn(BaseModel):
    """One user message; without conversation_id a new conversation is started."""

    message: Annotated[str, Field(min_length=1, max_length=10_000)]
    conversation_id: uuid.UUID | None = None

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain more than whitespace")
        return value


class ToolCallOut(BaseModel):
    """A tool the agent ran in this turn."""

    name: str
    args: dict[str, Any]
    result: Any = None
    duration_ms: float | None = None
    status: str | None = None


class UsageOut(BaseModel):
    """Tokens of the turn, summed over its model calls."""

    input_tokens: int = 0
    output_tokens: int = 0


class TurnOut(BaseModel):
    """A turn: completed, or paused until people decide its approvals (issue 4)."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID | None = Field(
        default=None, description="The stored answer; null while awaiting approval"
    )
    run_id: uuid.UUID
    status: Literal["completed", "awaiting_approval"]
    answer: str
    tool_calls: list[ToolCallOut]
    citations: list[dict[str, Any]]
    usage: UsageOut
    duration_ms: float
    model: str
    memories: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Long-term memories used for this answer (id, content, kind, importance, "
        "score)",
    )
    approvals: list[ApprovalOut] = Field(
        default_factory=list, description="The approvals the turn waits for (awaiting_approval)"
    )


class ConversationOut(BaseModel):
    """A conversation in a list."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    message_count: int
    running: bool


class MessageOut(BaseModel):
    """A stored message."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    role: str
    content: str
    tool_calls: list[ToolCallOut] | None = None
    citations: list[dict[str, Any]] | None = None
    usage: UsageOut | None = None
    run_id: uuid.UUID | None = None
    model: str | None = None
    created_at: datetime
    feedback: MessageFeedbackOut | None = Field(
        default=None, description="Your feedback on this answer (POST /feedback)"
    )


class ConversationDetailOut(ConversationOut):
    """A conversation with its messages in order."""

    messages: list[MessageOut]


class ConversationUpdateIn(BaseModel):
    """What can be changed about a conversation."""

    title: Title
