"""The tool ledger in the app database: side-effecting calls run at most once per tool call id,
whichever worker runs (or re-runs) the node."""

from __future__ import annotations

from app.core.resources import Resources
from app.repositories.runs import ToolExecutionRepository
from graphs.tools import LedgerEntry
from graphs.tools.ledger import STARTED, UNKNOWN_OUTCOME


class DatabaseToolLedger:
    """Records executions in `tool_executions`, shared by every worker."""

    def __init__(self, resources: Resources, thread_id: str) -> None:
        self.resources = resources
        self.thread_id = thread_id

    async def claim(self, call_id: str, tool: str) -> LedgerEntry | None:
        """Insert the `started` row (committed before the call acts); an existing row wins."""
        async with self.resources.sessionmaker() as session:
            claimed = await ToolExecutionRepository(session).claim(
                call_id, self.thread_id, tool, STARTED, self.resources.clock.now()
            )
            await session.commit()
            if claimed:
                return None
            found = await ToolExecutionRepository(session).get(call_id)
        if found is None or found.status == STARTED:
            return LedgerEntry(UNKNOWN_OUTCOME, "error")
        return LedgerEntry(found.content, found.status)

    async def record(self, call_id: str, tool: str, entry: LedgerEntry) -> None:
        """Store the claimed call's result."""
        async with self.resources.sessionmaker() as session:
            await ToolExecutionRepository(session).finish(call_id, entry.status, entry.content)
            await session.commit()

    async def release(self, call_id: str) -> None:
        """Drop a claim that never got a result."""
        async with self.resources.sessionmaker() as session:
            await ToolExecutionRepository(session).release(call_id, STARTED)
            await session.commit()
