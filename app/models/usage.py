"""Usage events: one row per agent turn, knowledge-base upload or search, with tokens and cost."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin


class UsageKind(StrEnum):
    """What an event records."""

    agent_turn = "agent_turn"
    kb_upload = "kb_upload"
    kb_search = "kb_search"
    # The assistant's long-term memory step after an answer (its own model call).
    memory = "memory"


class UsageStatus(StrEnum):
    """How the recorded operation ended."""

    completed = "completed"
    failed = "failed"
    awaiting_approval = "awaiting_approval"


class UsageEvent(IdMixin, Base):
    """One metered operation of one user; created_at comes from the service's clock."""

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_events_user_id_created_at", "user_id", "created_at"),
        Index("ix_usage_events_kind_created_at", "kind", "created_at"),
        Index("ix_usage_events_graph_id_created_at", "graph_id", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    # No foreign keys to conversations/runs: usage outlives a deleted conversation.
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    model: Mapped[str | None] = mapped_column(String(200))
    # The graph that ran (agent turns and memory steps; None for knowledge-base events).
    graph_id: Mapped[str | None] = mapped_column(String(100))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    # A turn that paused for approvals: milliseconds between each pause and its decision,
    # summed (None: the turn never paused). `latency_ms` is the time the turn ran.
    approval_wait_ms: Mapped[int | None] = mapped_column(Integer)
    streamed: Mapped[bool] = mapped_column(Boolean, default=False)
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(30))
    error_code: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(index=True)


class UsageDaily(IdMixin, Base):
    """Usage events of one UTC day rolled up per user, kind, model and status: what remains of
    events older than MAI_USAGE_RETENTION_DAYS once the retention sweeper deleted them."""

    __tablename__ = "usage_daily"
    __table_args__ = (
        UniqueConstraint("day", "user_id", "kind", "model", "status"),
        Index("ix_usage_daily_user_id_day", "user_id", "day"),
    )

    day: Mapped[str] = mapped_column(String(10))  # 'YYYY-MM-DD' (UTC)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    # '' rather than NULL, so the unique key matches rows without a model on every database.
    model: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(30))
    events: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
