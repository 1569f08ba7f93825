"""The ledger of side-effecting tool calls: exactly once per tool call id.

A node re-runs from its start after a resume, a retry or a crash; a call that sends an email or
writes to an API must not act again when its node does. The runner asks the ledger first and
returns the recorded result of a call that already ran; otherwise it runs the call and records
the result before the node reports it. The service keeps the ledger in its database; without
one (LangGraph Studio, unit tests) calls simply run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A recorded execution: what the model was told and how it went."""

    content: str
    status: str


class ToolLedger(Protocol):
    """Where executions of side-effecting calls are recorded."""

    async def recall(self, call_id: str) -> LedgerEntry | None:
        """The recorded execution of this call, if it ran."""
        ...

    async def record(self, call_id: str, tool: str, entry: LedgerEntry) -> None:
        """Record that this call ran (the first record wins)."""
        ...
