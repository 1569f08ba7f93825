"""The tool ledger in the app database: side-effecting calls run once per tool call id."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from app.core.resources import Resources
from app.models import ToolExecution
from app.repositories.runs import ToolExecutionRepository
from graphs.tools import LedgerEntry


class DatabaseToolLedger:
    """Records executions in `tool_executions`, shared by every worker."""

    def __init__(self, resources: Resources, thread_id: str) -> None:
        self.resources = resources
        self.thread_id = thread_id

    async def recall(self, call_id: str) -> LedgerEntry | None:
        """The recorded execution of this call."""
        async with self.resources.sessionmaker() as session:
            found = await ToolExecutionRepository(session).get(call_id)
        return LedgerEntry(found.content, found.status) if found is not None else None

    async def record(self, call_id: str, tool: str, entry: LedgerEntry) -> None:
        """Record the execution; a concurrent record of the same call keeps the first."""
        async with self.resources.sessionmaker() as session:
            try:
                await ToolExecutionRepository(session).add(
                    ToolExecution(
                        tool_call_id=call_id,
                        thread_id=self.thread_id,
                        tool=tool,
                        status=entry.status,
                        content=entry.content,
                        created_at=self.resources.clock.now(),
                    )
                )
                await session.commit()
            except IntegrityError:
                await session.rollback()
