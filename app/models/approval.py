"""Approvals of tool calls (human in the loop), their history, and the email outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin


class ApprovalStatus(StrEnum):
    """Where an approval stands; only `pending` can change (one conditional UPDATE)."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"


class ApprovalEventKind(StrEnum):
    """What happened to an approval."""

    requested = "requested"
    approved = "approved"
    modified = "modified"
    rejected = "rejected"
    expired = "expired"
    resumed = "resumed"


class ApprovalKind(StrEnum):
    """What waits for a person: a tool call, or a planner's whole plan (its JSON in `args`)."""

    tool = "tool"
    plan = "plan"


class Approval(Base):
    """One tool call (or, kind "plan", a planner's plan) waiting for (or decided by) a person.

    `id` is the approval id of the interrupt payload; `interrupt_id` groups the approvals of
    one pause: the run resumes once none of them is pending.
    """

    __tablename__ = "approvals"
    __table_args__ = (
        Index("ix_approvals_user_id_status", "user_id", "status"),
        Index("ix_approvals_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    run_id: Mapped[uuid.UUID] = mapped_column(index=True)
    interrupt_id: Mapped[str] = mapped_column(String(64), index=True)
    tool_call_id: Mapped[str] = mapped_column(String(200))
    # The call's place among the pause's approvals (the order the model asked for them).
    position: Mapped[int] = mapped_column(Integer, default=0)
    tool: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(
        String(20), default=ApprovalKind.tool.value, server_default=ApprovalKind.tool.value
    )
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    edited_args: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=ApprovalStatus.pending.value)
    requested_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    decided_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # Set when the run was resumed with this pause's decisions (claimed once, by one process).
    resumed_at: Mapped[datetime | None] = mapped_column()

    @property
    def plan(self) -> dict[str, Any] | None:
        """A plan approval's plan (kept in `args`); None for a tool call."""
        return self.args if self.kind == ApprovalKind.plan.value else None


class ApprovalEvent(IdMixin, Base):
    """One entry of an approval's history: who did what, when, with which arguments."""

    __tablename__ = "approval_events"

    approval_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("approvals.id", ondelete="CASCADE"), index=True
    )
    # Order within the approval's history (timestamps can tie under one clock tick).
    seq: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    args: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()


class OutboxEmail(IdMixin, Base):
    """An approved email kept for an admin to read (when no SMTP server is configured)."""

    __tablename__ = "email_outbox"

    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    to: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
