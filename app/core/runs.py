"""This process's side of the run engine: the runs it executes, its hooks and its wake-up.

The durable state of a run lives in its row (see `app.services.runs`); this registry holds only
what belongs to the process: the tasks executing runs here (so a cancel can stop one at
once), the event log, the hooks that react to finished runs (analytics, metrics) and to
interrupted ones (approvals), and an event that wakes the local workers when a run is queued.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from app.core.logging import get_logger
from app.core.run_events import MemoryRunEventLog, RunEventLog

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended, handed to every run hook after it is stored (analytics, metrics)."""

    run_id: uuid.UUID
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    status: str  # completed | failed | interrupted | awaiting_approval | cancelled | timeout
    model: str | None
    input_tokens: int
    output_tokens: int
    duration_ms: float
    ttft_ms: float | None
    streamed: bool
    tool_calls: list[dict[str, Any]]
    error_code: str | None
    error: str | None
    started_at: datetime
    finished_at: datetime
    graph_id: str = "assistant"
    # Tokens the assistant's long-term memory step used, apart from the answer's.
    memory_usage: Mapping[str, int] | None = None
    # The caller's own end-user id (OpenAI's `user`), from the run's metadata.
    end_user: str | None = None
    # The run continued from a command (a resume after a pause), not from new input.
    resumed: bool = False


RunHook = Callable[[RunOutcome], Awaitable[None]]


class InterruptHandler(Protocol):
    """A participant that reacts to interrupted runs (approvals); it never owns run status."""

    async def record(
        self, session: Any, run: Any, interrupts: list[tuple[str, Any]]
    ) -> dict[str, Any] | None:
        """Inside the transaction marking the run interrupted: store what the interrupts ask
        for; return extra JSON for the waiting caller (None: not this handler's interrupt)."""

    async def announce(self, extra: Mapping[str, Any]) -> None:
        """After that transaction committed: notify whoever must act."""


@dataclass
class LocalRun:
    """A run executing in this process."""

    run_id: uuid.UUID
    task: asyncio.Task[None]
    cancel_action: str | None = None


@dataclass
class RunRegistry:
    """The runs this process executes, its event log and the engine's hooks."""

    worker_id: str = field(default_factory=lambda: f"w-{uuid.uuid4().hex[:12]}")
    events: RunEventLog = field(default_factory=MemoryRunEventLog)
    local: dict[uuid.UUID, LocalRun] = field(default_factory=dict)
    # Called with each finished run after it is stored; a failing hook is logged, not raised.
    hooks: list[RunHook] = field(default_factory=list)
    interrupt_handlers: list[InterruptHandler] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False

    def start(self, run_id: uuid.UUID, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Execute `work` for this run in a task of its own."""
        task = asyncio.create_task(work, name=f"run-{run_id}")
        self.local[run_id] = LocalRun(run_id, task)

        def _forget(_: asyncio.Task[None]) -> None:
            self.local.pop(run_id, None)
            # A finished run frees a slot (and maybe its thread): look for more work.
            self.wakeup.set()

        task.add_done_callback(_forget)
        return task

    def cancel_local(self, run_id: uuid.UUID, action: str) -> bool:
        """Stop a run executing here; False when it is not here."""
        found = self.local.get(run_id)
        if found is None or found.task.done():
            return False
        found.cancel_action = action
        found.task.cancel()
        return True

    def cancel_action_of(self, run_id: uuid.UUID) -> str | None:
        """Why a local run was cancelled (None: the process is stopping)."""
        found = self.local.get(run_id)
        return found.cancel_action if found is not None else None

    def running_here(self) -> list[uuid.UUID]:
        """The ids of the runs executing in this process."""
        return list(self.local)

    async def notify(self, outcome: RunOutcome) -> None:
        """Run every hook for a finished run."""
        for hook in self.hooks:
            try:
                await hook(outcome)
            except Exception:
                log.exception("run_hook_failed", run_id=str(outcome.run_id))

    async def shutdown(self, grace_seconds: float) -> None:
        """Give running runs `grace_seconds` to finish, then cancel them (they go back to the
        queue, to be resumed from their checkpoint)."""
        self.stopping = True
        tasks = [run.task for run in self.local.values()]
        if not tasks:
            return
        _, still = await asyncio.wait(tasks, timeout=grace_seconds)
        for task in still:
            task.cancel()
        if still:
            log.warning("runs_requeued_at_shutdown", count=len(still))
            await asyncio.wait(still, timeout=10)
