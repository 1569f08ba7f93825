"""The ledger of side-effecting tool calls: at most one execution per tool call id.

A node re-runs from its start after a resume, a retry or a crash; a call that sends an email or
writes to an API must not act again when its node does. The runner claims the call in the
ledger before it acts and records the result once it has one: a re-run of a finished call gets
the recorded result, and a call whose worker died between claim and result is not run again (its
outcome is reported as unknown, since acting twice is worse for an email or a payment). The
service keeps the ledger in its database; without one (LangGraph Studio, unit tests) calls
simply run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

STARTED = "started"
UNKNOWN_OUTCOME = (
    "This call was started once already, and the worker running it stopped before it "
    "reported a result; it is not run a second time. Check whether it took effect before "
    "asking for it again."
)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A recorded execution: what the model was told and how it went."""

    content: str
    status: str


@runtime_checkable
class ToolLedger(Protocol):
    """Where executions of side-effecting calls are recorded."""

    async def claim(self, call_id: str, tool: str) -> LedgerEntry | None:
        """Claim this call before running it: None when the caller may run it now, else the
        recorded entry (a finished call's result, or the unknown outcome of one cut short)."""

    async def record(self, call_id: str, tool: str, entry: LedgerEntry) -> None:
        """Record the result of a claimed call."""

    async def release(self, call_id: str) -> None:
        """Give up a claim without a result (the call timed out before it could act), so a
        re-run may try it again."""
