"""Agent turns running in this process: their event logs, results and shutdown.

A turn runs in its own task, detached from the request that started it, so a client that
disconnects does not lose the turn. Each turn keeps the events it emitted; a subscriber reads
them from the start, so it sees every event whatever the moment it subscribed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.core.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of a turn, in the LangGraph server's SSE vocabulary."""

    event: str
    data: Any


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a turn ended, handed to every run hook after it is stored (analytics, metrics)."""

    run_id: uuid.UUID
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    status: str  # completed | failed | interrupted (approvals: awaiting_approval)
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


RunHook = Callable[[RunOutcome], Awaitable[None]]


@dataclass
class RunHandle:
    """A turn in flight: its ids, the events so far, and its outcome once done."""

    run_id: uuid.UUID
    conversation_id: uuid.UUID
    events: list[RunEvent] = field(default_factory=list)
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def emit(self, event: str, data: Any) -> None:
        """Append an event and wake the subscribers."""
        self.events.append(RunEvent(event, data))
        self._changed.set()

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        """Record the outcome; subscribers drain the remaining events and stop."""
        self.result, self.error, self.done = result, error, True
        self._changed.set()

    async def subscribe(self) -> AsyncIterator[RunEvent]:
        """Every event of the turn from the first, then new ones as they come, until done."""
        index = 0
        while True:
            while index < len(self.events):
                yield self.events[index]
                index += 1
            if self.done:
                return
            self._changed.clear()
            if index < len(self.events) or self.done:
                continue
            await self._changed.wait()

    async def wait(self) -> Any:
        """The turn's result, or its error raised."""
        while not self.done:
            self._changed.clear()
            if self.done:
                break
            await self._changed.wait()
        if self.error is not None:
            raise self.error
        return self.result


class RunRegistry:
    """The turns this process is running; shutdown lets them finish, then interrupts them."""

    def __init__(self) -> None:
        self.handles: dict[uuid.UUID, RunHandle] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        # Called with each finished turn after it is stored; a failing hook is logged, not raised.
        self.hooks: list[RunHook] = []

    def start(self, handle: RunHandle, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` for this turn in a task that outlives the request."""
        self.handles[handle.run_id] = handle
        task = asyncio.create_task(work, name=f"agent-run-{handle.run_id}")
        self.tasks.add(task)

        def _forget(done: asyncio.Task[None]) -> None:
            self.tasks.discard(done)
            self.handles.pop(handle.run_id, None)

        task.add_done_callback(_forget)
        return task

    def get(self, run_id: uuid.UUID) -> RunHandle | None:
        """A turn running in this process."""
        return self.handles.get(run_id)

    async def notify(self, outcome: RunOutcome) -> None:
        """Run every hook for a finished turn."""
        for hook in self.hooks:
            try:
                await hook(outcome)
            except Exception:
                log.exception("run_hook_failed", run_id=str(outcome.run_id))

    async def shutdown(self, grace_seconds: float) -> None:
        """Give running turns `grace_seconds` to finish, then cancel (they record themselves)."""
        if not self.tasks:
            return
        pending = set(self.tasks)
        _, still = await asyncio.wait(pending, timeout=grace_seconds)
        for task in still:
            task.cancel()
        if still:
            log.warning("agent_runs_interrupted", count=len(still))
            await asyncio.wait(still, timeout=10)
