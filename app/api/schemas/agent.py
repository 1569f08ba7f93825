"""Request and response bodies of the agent API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.api.schemas.approvals import ApprovalOut
from app.api.schemas.feedback import MessageFeedbackOut

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


StreamModeName = Literal["values", "updates", "messages", "custom", "debug", "tasks", "checkpoints"]
MultitaskStrategyName = Literal["reject", "enqueue", "interrupt", "rollback"]
GraphId = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
]


class QueryIn(BaseModel):
    """One user message; without conversation_id a new conversation is started."""

    message: Annotated[str, Field(min_length=1, max_length=10_000)]
    conversation_id: uuid.UUID | None = None
    graph: GraphId | None = Field(
        default=None, description="The graph (langgraph.json id) to run; default `assistant`"
    )
    assistant_id: GraphId | None = Field(default=None, description="Same as `graph`")
    multitask_strategy: MultitaskStrategyName = Field(
        default="reject",
        description=(
            "When the conversation is busy: reject (409 thread_busy), enqueue (run after the "
            "current one), interrupt (cancel it, keep its progress), rollback (cancel it and "
            "remove its progress)"
        ),
    )
    stream_mode: StreamModeName | list[StreamModeName] | None = Field(
        default=None,
        description="/stream only: which LangGraph stream parts to send (default messages, "
        "updates and the final values)",
    )

    @property
    def graph_id(self) -> str:
        """The graph to run."""
        return self.graph or self.assistant_id or "assistant"

    @property
    def stream_modes(self) -> list[str] | None:
        """stream_mode as a list."""
        if self.stream_mode is None:
            return None
        return [self.stream_mode] if isinstance(self.stream_mode, str) else list(self.stream_mode)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain more than whitespace")
        return value


class ToolCallOut(BaseModel):
    """A tool the agent ran in this turn."""

    id: str | None = None
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
    """A turn: completed, or paused until people decide its approvals."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID | None = Field(
        default=None, description="The stored answer; null while awaiting approval"
    )
    run_id: uuid.UUID
    status: Literal["completed", "awaiting_approval"]
    answer: str
    tool_calls: list[ToolCallOut]
    citations: list[dict[str, Any]] = Field(
        description="The passages the answer cites as [number]: number, document_id, title, "
        "page, snippet, score, collection (the document's collection name; null for your own "
        "documents outside any) and supported"
    )
    citation_support: float | None = Field(
        default=None,
        description="Share of the citations whose citing sentence shares enough words with "
        "the passage (each citation's `supported`); null when the answer cites nothing",
    )
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
    graph_id: str = Field(default="assistant", description="The graph that ran")
    output: dict[str, Any] | None = Field(
        default=None,
        description="The final state of a graph other than the assistant (its own output shape)",
    )
    interrupts: list[dict[str, Any]] = Field(
        default_factory=list,
        description="What the run paused on when it is not an approval of a tool call "
        "(for example a planner's plan approval): `{id, value}` each",
    )


class RunErrorOut(BaseModel):
    """Why a run failed."""

    code: str
    detail: str | None = None


class RunOut(BaseModel):
    """A run on the run engine."""

    run_id: uuid.UUID
    thread_id: uuid.UUID
    conversation_id: uuid.UUID
    graph_id: str
    status: Literal["pending", "running", "success", "error", "interrupted", "timeout", "cancelled"]
    attempt: int
    multitask_strategy: str
    queue_position: int | None = Field(
        default=None, description="Pending runs ahead of this one (pending runs only)"
    )
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    error: RunErrorOut | None = None


class ConversationUsageOut(BaseModel):
    """Tokens and cost of a conversation's turns (retained usage events)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


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
    usage: ConversationUsageOut = Field(default_factory=ConversationUsageOut)


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
