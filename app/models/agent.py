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
    """Where an agent run stands."""

    running = "running"
    completed = "completed"
    failed = "failed"
    interrupted = "interrupted"
    awaiting_approval = "awaiting_approval"  # paused until people decide its approvals


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
    """One turn of the agent: who, on which conversation, how it ended, what it used."""

    __tablename__ = "agent_runs"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.running.value, index=True)
    model: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(50))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[float | None] = mapped_column(Float)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
