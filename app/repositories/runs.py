"""SQL for the run engine: the runs table is the queue, with leases and status transitions.

Every status change is a conditional UPDATE on the status it leaves (`WHERE status IN (...)`),
so two processes can never both move a run, and the transition table in one place
(`ALLOWED`) says which moves exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ACTIVE_RUN_STATUSES, AgentRun, Conversation, RunStatus, ToolExecution

S = RunStatus
# status -> the statuses it may come from.
ALLOWED: dict[RunStatus, tuple[RunStatus, ...]] = {
    S.pending: (S.running, S.interrupted),  # retry after a lost lease / an LLM outage; resume
    S.running: (S.pending,),
    S.success: (S.running,),
    S.error: (S.pending, S.running, S.interrupted),
    S.interrupted: (S.running,),
    S.timeout: (S.running,),
    S.cancelled: (S.pending, S.running, S.interrupted),
}


def _rowcount(result: Any) -> int:
    if isinstance(result, CursorResult):
        return int(result.rowcount)
    return int(getattr(result, "rowcount", 0))


class RunRepository:
    """Reads and writes runs (and the thread locks they hold) within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Reading ------------------------------------------------------------------------------

    async def get(self, run_id: uuid.UUID) -> AgentRun | None:
        """The run with this id."""
        return await self.session.get(AgentRun, run_id, populate_existing=True)

    async def for_thread(
        self, thread_id: uuid.UUID, *, limit: int = 100, offset: int = 0
    ) -> Sequence[AgentRun]:
        """A thread's runs, newest first."""
        result = await self.session.execute(
            select(AgentRun)
            .where(AgentRun.conversation_id == thread_id)
            .order_by(AgentRun.created_at.desc())
            .limit(limit)
            .offset(offset)
        )
        return result.scalars().all()

    async def active_for_thread(self, thread_id: uuid.UUID) -> Sequence[AgentRun]:
        """The thread's pending and running runs, oldest first."""
        result = await self.session.execute(
            select(AgentRun)
            .where(
                AgentRun.conversation_id == thread_id,
                AgentRun.status.in_(ACTIVE_RUN_STATUSES),
            )
            .order_by(AgentRun.created_at)
        )
        return result.scalars().all()

    async def count_pending(self) -> int:
        """Runs waiting for a worker, over every thread."""
        count = await self.session.scalar(
            select(func.count()).select_from(AgentRun).where(AgentRun.status == S.pending.value)
        )
        return int(count or 0)

    async def count_by_status(self) -> dict[str, int]:
        """How many runs are in each status."""
        result = await self.session.execute(
            select(AgentRun.status, func.count()).group_by(AgentRun.status)
        )
        return {str(row[0]): int(row[1]) for row in result.all()}

    async def queue_position(self, run: AgentRun) -> int:
        """How many pending runs are ahead of this one (0: next)."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(AgentRun)
            .where(AgentRun.status == S.pending.value, AgentRun.created_at < run.created_at)
        )
        return int(count or 0)

    # Creating -----------------------------------------------------------------------------

    async def add(self, run: AgentRun) -> AgentRun:
        """Insert a run."""
        self.session.add(run)
        await self.session.flush()
        return run

    # Claiming, leases ---------------------------------------------------------------------

    async def claimable(self, now: datetime, limit: int) -> Sequence[AgentRun]:
        """Pending runs that are due, oldest first, that are first in their thread's line.

        On PostgreSQL the rows are locked with SKIP LOCKED, so concurrent workers look at
        different runs instead of queueing behind each other.
        """
        query = (
            select(AgentRun)
            .where(
                AgentRun.status == S.pending.value,
                or_(AgentRun.available_at.is_(None), AgentRun.available_at <= now),
            )
            .order_by(AgentRun.created_at)
            .limit(limit)
        )
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        result = await self.session.execute(query)
        return result.scalars().all()

    async def lock_thread(self, thread_id: uuid.UUID, run_id: uuid.UUID, now: datetime) -> bool:
        """Give the thread to `run_id` if it is free or already its; False if another run
        holds it. One conditional UPDATE, so it holds across processes."""
        result = await self.session.execute(
            update(Conversation)
            .where(
                Conversation.id == thread_id,
                or_(Conversation.active_run_id.is_(None), Conversation.active_run_id == run_id),
            )
            .values(active_run_id=run_id, active_run_heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def release_thread(self, thread_id: uuid.UUID, run_id: uuid.UUID, now: datetime) -> None:
        """Free the thread if `run_id` holds it, and record the activity."""
        await self.session.execute(
            update(Conversation)
            .where(Conversation.id == thread_id, Conversation.active_run_id == run_id)
            .values(active_run_id=None, active_run_heartbeat_at=None, last_activity_at=now)
            .execution_options(synchronize_session=False)
        )

    async def thread_holder(self, thread_id: uuid.UUID) -> uuid.UUID | None:
        """The run holding the thread."""
        return await self.session.scalar(
            select(Conversation.active_run_id).where(Conversation.id == thread_id)
        )

    async def older_pending_on_thread(self, run: AgentRun) -> bool:
        """Whether a pending run of the same thread was created before this one."""
        found = await self.session.scalar(
            select(func.count())
            .select_from(AgentRun)
            .where(
                AgentRun.conversation_id == run.conversation_id,
                AgentRun.status == S.pending.value,
                AgentRun.created_at < run.created_at,
                AgentRun.id != run.id,
            )
        )
        return bool(found)

    async def start(
        self, run_id: uuid.UUID, owner: str, now: datetime, lease_until: datetime
    ) -> bool:
        """pending -> running under this worker's lease (a new attempt)."""
        result = await self.session.execute(
            update(AgentRun)
            .where(AgentRun.id == run_id, AgentRun.status == S.pending.value)
            .values(
                status=S.running.value,
                lease_owner=owner,
                lease_expires_at=lease_until,
                started_at=now,
                attempt=AgentRun.attempt + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def renew(self, run_ids: Iterable[uuid.UUID], owner: str, lease_until: datetime) -> None:
        """Extend the leases of the runs this worker holds."""
        ids = list(run_ids)
        if not ids:
            return
        await self.session.execute(
            update(AgentRun)
            .where(
                AgentRun.id.in_(ids),
                AgentRun.lease_owner == owner,
                AgentRun.status == S.running.value,
            )
            .values(lease_expires_at=lease_until)
            .execution_options(synchronize_session=False)
        )

    async def expired_leases(self, now: datetime, limit: int = 100) -> Sequence[AgentRun]:
        """Running runs whose worker stopped renewing their lease."""
        result = await self.session.execute(
            select(AgentRun)
            .where(AgentRun.status == S.running.value, AgentRun.lease_expires_at < now)
            .limit(limit)
        )
        return result.scalars().all()

    async def cancel_requests(self, run_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Of these runs, the ones asked to stop, with the action asked."""
        ids = list(run_ids)
        if not ids:
            return {}
        result = await self.session.execute(
            select(AgentRun.id, AgentRun.cancel_action).where(
                AgentRun.id.in_(ids), AgentRun.cancel_action.is_not(None)
            )
        )
        return {row[0]: str(row[1]) for row in result.all()}

    # Transitions --------------------------------------------------------------------------

    async def transition(
        self,
        run_id: uuid.UUID,
        status: RunStatus,
        values: dict[str, Any] | None = None,
        *,
        owner: str | None = None,
    ) -> bool:
        """Move the run to `status` from one of the statuses allowed to lead there; with
        `owner`, only while that worker still holds the lease. False when the run moved on."""
        conditions = [
            AgentRun.id == run_id,
            AgentRun.status.in_([s.value for s in ALLOWED[status]]),
        ]
        if owner is not None:
            conditions.append(
                or_(AgentRun.lease_owner == owner, AgentRun.status != S.running.value)
            )
        fields: dict[str, Any] = {"status": status.value, **(values or {})}
        if status is not S.running:
            fields.setdefault("lease_owner", None)
            fields.setdefault("lease_expires_at", None)
        result = await self.session.execute(
            update(AgentRun)
            .where(and_(*conditions))
            .values(**fields)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def request_cancel(self, run_id: uuid.UUID, action: str) -> bool:
        """Ask the worker running this run to stop it (pending/interrupted runs are cancelled
        by the caller directly)."""
        result = await self.session.execute(
            update(AgentRun)
            .where(AgentRun.id == run_id, AgentRun.status == S.running.value)
            .values(cancel_action=action)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def update(self, run_id: uuid.UUID, values: dict[str, Any]) -> None:
        """Set fields of a run that are not its status (usage, model, result)."""
        await self.session.execute(
            update(AgentRun)
            .where(AgentRun.id == run_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def delete(self, run_id: uuid.UUID) -> None:
        """Remove a run row."""
        await self.session.execute(delete(AgentRun).where(AgentRun.id == run_id))


class ToolExecutionRepository:
    """The ledger of side-effecting tool calls, by tool call id."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tool_call_id: str) -> ToolExecution | None:
        """The recorded execution of this call."""
        return await self.session.get(ToolExecution, tool_call_id)

    async def claim(
        self, call_id: str, thread_id: str, tool: str, status: str, now: datetime
    ) -> bool:
        """Insert the call's row unless it exists; True when this insert made it."""
        values = {
            "tool_call_id": call_id,
            "thread_id": thread_id,
            "tool": tool,
            "status": status,
            "content": "",
            "created_at": now,
        }
        dialect = self.session.bind.dialect.name if self.session.bind is not None else ""
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement: Any = pg_insert(ToolExecution).values(values).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(ToolExecution).values(values).on_conflict_do_nothing()
        return _rowcount(await self.session.execute(statement)) == 1

    async def finish(self, call_id: str, status: str, content: str) -> None:
        """Store a claimed call's result."""
        await self.session.execute(
            update(ToolExecution)
            .where(ToolExecution.tool_call_id == call_id)
            .values(status=status, content=content)
            .execution_options(synchronize_session=False)
        )

    async def release(self, call_id: str, status: str) -> None:
        """Delete the call's row while it is still in `status` (a claim without result)."""
        await self.session.execute(
            delete(ToolExecution).where(
                ToolExecution.tool_call_id == call_id, ToolExecution.status == status
            )
        )
