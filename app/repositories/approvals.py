"""SQL for approvals, their history and the email outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    AgentRun,
    Approval,
    ApprovalEvent,
    ApprovalStatus,
    OutboxEmail,
)

PENDING = ApprovalStatus.pending.value


class ApprovalRepository:
    """Reads and writes approvals within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_all(self, approvals: Sequence[Approval]) -> None:
        """Insert approvals (ids already set), skipping any that already exist."""
        for approval in approvals:
            if await self.session.get(Approval, approval.id) is None:
                self.session.add(approval)
        await self.session.flush()

    async def get(self, approval_id: uuid.UUID) -> Approval | None:
        """The approval with this id, read fresh from the database."""
        result = await self.session.execute(
            select(Approval)
            .where(Approval.id == approval_id)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def page(
        self, *, user_id: uuid.UUID | None, status: str | None, limit: int, offset: int
    ) -> tuple[Sequence[Approval], int]:
        """A page of approvals (a user's, or everyone's with user_id None), newest first."""
        conditions = []
        if user_id is not None:
            conditions.append(Approval.user_id == user_id)
        if status is not None:
            conditions.append(Approval.status == status)
        total = await self.session.scalar(
            select(func.count()).select_from(Approval).where(*conditions)
        )
        result = await self.session.execute(
            select(Approval)
            .where(*conditions)
            .order_by(Approval.requested_at.desc(), Approval.id)
            .limit(limit)
            .offset(offset)
        )
        return result.scalars().all(), int(total or 0)

    async def in_interrupt(self, interrupt_id: str) -> Sequence[Approval]:
        """Every approval of one pause, in request order."""
        result = await self.session.execute(
            select(Approval)
            .where(Approval.interrupt_id == interrupt_id)
            .order_by(Approval.requested_at, Approval.position)
            .execution_options(populate_existing=True)
        )
        return result.scalars().all()

    async def pending_for_conversation(self, conversation_id: uuid.UUID) -> Sequence[Approval]:
        """The approvals a conversation is waiting for: pending ones, and decided ones whose
        run has not been resumed yet (the run still sits at its interrupt)."""
        result = await self.session.execute(
            select(Approval)
            .where(Approval.conversation_id == conversation_id, Approval.resumed_at.is_(None))
            .order_by(Approval.requested_at, Approval.position)
        )
        return result.scalars().all()

    async def due(self, now: datetime, limit: int = 100) -> Sequence[uuid.UUID]:
        """Ids of pending approvals whose time is up."""
        result = await self.session.execute(
            select(Approval.id)
            .where(Approval.status == PENDING, Approval.expires_at <= now)
            .order_by(Approval.expires_at)
            .limit(limit)
        )
        return list(result.scalars().all())

    async def count_pending(self) -> int:
        """How many approvals wait for a decision (all users)."""
        total = await self.session.scalar(
            select(func.count()).select_from(Approval).where(Approval.status == PENDING)
        )
        return int(total or 0)

    async def decide(self, approval_id: uuid.UUID, values: dict[str, Any]) -> bool:
        """Record a decision if the approval is still pending: one conditional UPDATE, so two
        deciders (in any process) cannot both win."""
        result = await self.session.execute(
            update(Approval)
            .where(Approval.id == approval_id, Approval.status == PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def claim_resume(self, interrupt_id: str, now: datetime) -> bool:
        """Mark a pause as resumed, once: True for the one caller that claimed it."""
        result = await self.session.execute(
            update(Approval)
            .where(Approval.interrupt_id == interrupt_id, Approval.resumed_at.is_(None))
            .values(resumed_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def unclaim_resume(self, interrupt_id: str) -> None:
        """Undo a claim whose resume could not start (the sweeper tries again)."""
        await self.session.execute(
            update(Approval)
            .where(Approval.interrupt_id == interrupt_id)
            .values(resumed_at=None)
            .execution_options(synchronize_session=False)
        )

    async def settled_unresumed(self, limit: int = 100) -> Sequence[str]:
        """Pauses whose approvals are all decided but whose run was never resumed (a process
        stopped between the last decision and the resume, or the conversation was busy)."""
        pending = func.sum(case((Approval.status == PENDING, 1), else_=0))
        result = await self.session.execute(
            select(Approval.interrupt_id)
            .where(Approval.resumed_at.is_(None))
            .group_by(Approval.interrupt_id)
            .having(pending == 0)
            .limit(limit)
        )
        return list(result.scalars().all())

    async def lock_run(self, run_id: uuid.UUID) -> None:
        """Serialise deciders of one run (row lock on PostgreSQL; SQLite has one writer)."""
        await self.session.execute(
            select(AgentRun.id).where(AgentRun.id == run_id).with_for_update()
        )

    async def add_event(self, event: ApprovalEvent) -> None:
        """Append to an approval's history."""
        last = await self.session.scalar(
            select(func.max(ApprovalEvent.seq)).where(
                ApprovalEvent.approval_id == event.approval_id
            )
        )
        event.seq = int(last) + 1 if last is not None else 0
        self.session.add(event)
        await self.session.flush()

    async def history(self, approval_id: uuid.UUID) -> Sequence[ApprovalEvent]:
        """An approval's history, oldest first."""
        result = await self.session.execute(
            select(ApprovalEvent)
            .where(ApprovalEvent.approval_id == approval_id)
            .order_by(ApprovalEvent.seq, ApprovalEvent.created_at)
        )
        return result.scalars().all()

    async def set_run_status(self, run_id: uuid.UUID, expected: str, status: str) -> bool:
        """Move a run from `expected` to `status` (False if it had moved on)."""
        result = await self.session.execute(
            update(AgentRun)
            .where(AgentRun.id == run_id, AgentRun.status == expected)
            .values(status=status)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def update_run(self, run_id: uuid.UUID, values: dict[str, Any]) -> None:
        """Set fields of a run."""
        await self.session.execute(
            update(AgentRun)
            .where(AgentRun.id == run_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def run_status(self, run_id: uuid.UUID) -> str | None:
        """The status of a run."""
        return await self.session.scalar(select(AgentRun.status).where(AgentRun.id == run_id))

    async def run_usage(self, run_id: uuid.UUID) -> dict[str, Any] | None:
        """The usage stored on a run (at its last pause)."""
        return await self.session.scalar(select(AgentRun.usage).where(AgentRun.id == run_id))


class OutboxRepository:
    """Reads and writes the email outbox within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, email: OutboxEmail) -> OutboxEmail:
        """Keep an email."""
        self.session.add(email)
        await self.session.flush()
        return email

    async def page(self, *, limit: int, offset: int) -> tuple[Sequence[OutboxEmail], int]:
        """A page of the outbox, newest first."""
        total = await self.session.scalar(select(func.count()).select_from(OutboxEmail))
        result = await self.session.execute(
            select(OutboxEmail)
            .order_by(OutboxEmail.created_at.desc(), OutboxEmail.id)
            .limit(limit)
            .offset(offset)
        )
        return result.scalars().all(), int(total or 0)


def _rowcount(result: Any) -> int:
    if isinstance(result, CursorResult):
        return int(result.rowcount)
    return int(getattr(result, "rowcount", 0))
