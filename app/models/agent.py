"""Conversations, their messages, and agent runs (one run per turn)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin, utcnow


class RunStatus(StrEnum):
    """Where a run stands: `pending -> running -> success | error | interrupted | timeout |
    cancelled`. `interrupted` is a run paused at a LangGraph interrupt (waiting for people);
    resuming it queues it again (`interrupted -> pending`). Only the run engine writes it."""

    pending = "pending"
    running = "running"
    success = "success"
    error = "error"
    interrupted = "interrupted"
    timeout = "timeout"
    cancelled = "cancelled"


ACTIVE_RUN_STATUSES = (RunStatus.pending.value, RunStatus.running.value)
FINAL_RUN_STATUSES = (
    RunStatus.success.value,
    RunStatus.error.value,
    RunStatus.timeout.value,
    RunStatus.cancelled.value,
)


class MultitaskStrategy(StrEnum):
    """What a new run does when its thread is busy with another one."""

    reject = "reject"
    enqueue = "enqueue"
    interrupt = "interrupt"
    rollback = "rollback"


class Conversation(IdMixin, TimestampMixin, Base):
    """One user's conversation with the assistant; also the LangGraph thread id."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_user_id_last_activity_at", "user_id", "last_activity_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The turn holding the conversation (NULL: idle). Taken by a conditional UPDATE, so two
    # processes cannot both run a turn on it; refreshed while the turn runs.
    active_run_id: Mapped[uuid.UUID | None] = mapped_column()
    active_run_heartbeat_at: Mapped[datetime | None] = mapped_column()
    # The graph the thread was started with (langgraph.json id).
    graph_id: Mapped[str] = mapped_column(
        String(100), default="assistant", server_default="assistant"
    )
    # LangGraph thread metadata (set through the LangGraph API; searchable).
    thread_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)


class Message(IdMixin, Base):
    """One stored message of a conversation (user or assistant), in order by position."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_id_position", "conversation_id", "position"),)

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    citations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    run_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    model: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentRun(IdMixin, Base):
    """One run of a graph on a thread (a turn): the run engine's queue row and its record.

    The row is the queue: workers claim `pending` rows, hold them with a lease renewed by
    heartbeat, and write every status change; a lease that expires hands the run to another
    worker, which resumes it from its last checkpoint.
    """

    __tablename__ = "agent_runs"
    __table_args__ = (Index("ix_agent_runs_status_available_at", "status", "available_at"),)

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.pending.value, index=True)
    graph_id: Mapped[str] = mapped_column(String(100), default="assistant")
    model: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_status: Mapped[int | None] = mapped_column(Integer)
    # What to run: the graph input, or a LangGraph Command (resume) as JSON.
    input: Mapped[Any] = mapped_column(JSON, nullable=True)
    command: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    stream_modes: Mapped[list[str] | None] = mapped_column(JSON)
    multitask_strategy: Mapped[str] = mapped_column(String(20), default="reject")
    streamed: Mapped[bool] = mapped_column(default=False)
    # Retry the run while the LLM is unreachable (runs nobody waits on, such as resumes).
    retry_llm_errors: Mapped[bool] = mapped_column(default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    available_at: Mapped[datetime | None] = mapped_column()
    # Set by a cancel request (interrupt | rollback); the worker running it stops it.
    cancel_action: Mapped[str | None] = mapped_column(String(20))
    # The thread's latest checkpoint before the run started (rollback returns to it).
    base_checkpoint_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[float | None] = mapped_column(Float)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What a caller waiting on the run is answered with (the turn result, or the pause).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Which API created the run: "langgraph" runs stream the graph's state as `values` events
    # (LangGraph's wire format); NULL runs stream MAI's turn result.
    protocol: Mapped[str | None] = mapped_column(String(20))
    # LangGraph run options the executor and the LangGraph routes act on: the assistant, the
    # stream modes as the client named them, interrupt_before/after, subgraphs, webhook.
    kwargs: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ToolExecution(Base):
    """A side-effecting tool call that ran, by its tool call id: a re-run of the same call
    (retry, resume, crash recovery) returns this result instead of acting again."""

    __tablename__ = "tool_executions"

    tool_call_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(100), index=True)
    tool: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
