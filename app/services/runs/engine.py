"""The run engine's use cases: create a run (with its thread's multitask strategy), read it,
follow its events, wait for it, cancel it, resume it.

Creating a run only writes its row (`pending`); a worker claims and executes it. Every API
(`/api/v1/agent`, the LangGraph API, the OpenAI-compatible API, approvals) goes through here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest, Conflict, MAIError, NotFound, ServiceUnavailable
from app.core.logging import bind_context, current_request_id, get_logger
from app.core.metrics import record_run_cancellation, record_run_transition
from app.core.resources import Resources
from app.core.run_events import END_EVENT, InvalidEventId, LoggedEvent, parse_event_id
from app.models import (
    ACTIVE_RUN_STATUSES,
    AgentRun,
    Conversation,
    Message,
    MultitaskStrategy,
    RunStatus,
)
from app.repositories.conversations import ConversationRepository, MessageRepository
from app.repositories.runs import RunRepository
from app.services.runs.executor import STREAM_MODES, cancel_run_effects

log = get_logger(__name__)

TITLE_MAX_CHARS = 60
# How often a waiter checks the run's row while no event reaches it.
WAIT_POLL_SECONDS = 1.0
CancelAction = str  # "interrupt" | "rollback"


def title_from(message: str) -> str:
    """A conversation title from its first message: one line, trimmed to about 60 characters."""
    text = " ".join(message.split())
    if len(text) <= TITLE_MAX_CHARS:
        return text or "New conversation"
    cut = text[: TITLE_MAX_CHARS - 1]
    if " " in cut[TITLE_MAX_CHARS // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


@dataclass
class RunRequest:
    """What to run: which graph, on which thread (None: a new one), with what."""

    user_id: uuid.UUID
    graph_id: str = "assistant"
    thread_id: uuid.UUID | None = None
    message: str | None = None  # a user message: stored on the thread, the graph's input
    input: Any = None
    command: dict[str, Any] | None = None
    multitask_strategy: MultitaskStrategy = MultitaskStrategy.reject
    stream_modes: list[str] | None = None
    streamed: bool = False
    retry_llm_errors: bool = False
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # "langgraph": the run streams the graph's state as `values` (LangGraph's wire format).
    protocol: str | None = None
    # LangGraph run options (assistant, stream modes as named, interrupt_before/after, ...).
    kwargs: dict[str, Any] | None = None
    # Start no earlier than this many seconds from now.
    delay_seconds: float | None = None


def check_stream_modes(modes: Sequence[str] | None) -> list[str] | None:
    """The stream modes asked for, or 422 naming the ones that do not exist."""
    if modes is None:
        return None
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown:
        from app.core.errors import Unprocessable

        raise Unprocessable(
            f"Unknown stream_mode {', '.join(map(repr, unknown))}; use any of "
            f"{', '.join(sorted(STREAM_MODES))}.",
            code="invalid_stream_mode",
        )
    return list(dict.fromkeys(modes))


def _with_request_id(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run's config with the id of the request that created it in its metadata, so the
    worker's log lines (in another task, maybe another process) carry it too."""
    request_id = current_request_id()
    if request_id is None:
        return config
    config = dict(config or {})
    config["metadata"] = {**(config.get("metadata") or {}), "request_id": request_id}
    return config


class RunEngine:
    """Run use cases; stateless, one per request or task is fine."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.clock = resources.clock
        self.registry = resources.runs

    # Creating -----------------------------------------------------------------------------

    async def create(self, session: AsyncSession, request: RunRequest) -> AgentRun:
        """Queue a run in the caller's session (the caller commits, then calls `queued`).

        404 for an unknown graph or another user's thread; 409 `thread_busy` when the thread
        runs something and the strategy is `reject`; 503 `queue_full` past MAI_RUN_QUEUE_LIMIT.
        """
        assert self.resources.graphs is not None, "the run engine is not started"
        self.resources.graphs.get(request.graph_id)
        runs = RunRepository(session)
        if await runs.count_pending() >= self.settings.run_queue_limit:
            raise ServiceUnavailable(
                f"The run queue is full ({self.settings.run_queue_limit} runs waiting); retry "
                "in a moment.",
                code="queue_full",
                headers={"Retry-After": "5"},
            )
        now = self.clock.now()
        run_id = uuid.uuid4()
        conversations = ConversationRepository(session)
        self._to_cancel: list[tuple[AgentRun, str]] = []
        if request.thread_id is None:
            conversation = await conversations.add(
                Conversation(
                    user_id=request.user_id,
                    title=request.title or title_from(request.message or request.graph_id),
                    graph_id=request.graph_id,
                    last_activity_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            thread_id = conversation.id
            await runs.lock_thread(thread_id, run_id, now)
        else:
            thread_id = request.thread_id
            if await conversations.get_for_user(thread_id, request.user_id) is None:
                raise NotFound(
                    f"No conversation with id {thread_id}.", code="conversation_not_found"
                )
            await self._make_room(session, thread_id, run_id, request.multitask_strategy)
        run = AgentRun(
            id=run_id,
            conversation_id=thread_id,
            user_id=request.user_id,
            graph_id=request.graph_id,
            status=RunStatus.pending.value,
            input=request.input,
            command=request.command,
            config=_with_request_id(request.config),
            context=request.context,
            stream_modes=request.stream_modes,
            multitask_strategy=request.multitask_strategy.value,
            streamed=request.streamed,
            retry_llm_errors=request.retry_llm_errors,
            attempt=0,
            created_at=now,
            started_at=now,
            protocol=request.protocol,
            kwargs=request.kwargs,
            available_at=now + timedelta(seconds=request.delay_seconds)
            if request.delay_seconds
            else None,
        )
        await runs.add(run)
        if request.message is not None:
            messages = MessageRepository(session)
            await messages.add(
                Message(
                    conversation_id=thread_id,
                    position=await messages.next_position(thread_id),
                    role="user",
                    content=request.message,
                    run_id=run_id,
                    created_at=now,
                )
            )
        record_run_transition(request.graph_id, RunStatus.pending.value)
        return run

    async def _make_room(
        self,
        session: AsyncSession,
        thread_id: uuid.UUID,
        run_id: uuid.UUID,
        strategy: MultitaskStrategy,
    ) -> None:
        runs = RunRepository(session)
        now = self.clock.now()
        active = list(await runs.active_for_thread(thread_id))
        if strategy is MultitaskStrategy.reject:
            if active or not await runs.lock_thread(thread_id, run_id, now):
                holder = active[0].id if active else await runs.thread_holder(thread_id)
                raise Conflict(
                    "A run is still in progress on this thread; wait for it to finish, or send "
                    "multitask_strategy enqueue, interrupt or rollback.",
                    code="thread_busy",
                    meta={
                        "conversation_id": str(thread_id),
                        "thread_id": str(thread_id),
                        "run_id": str(holder) if holder else None,
                    },
                )
            return
        if strategy is MultitaskStrategy.enqueue:
            return
        action = "rollback" if strategy is MultitaskStrategy.rollback else "interrupt"
        for other in active:
            self._to_cancel.append((other, action))
            if other.status == RunStatus.pending.value:
                await runs.transition(
                    other.id,
                    RunStatus.cancelled,
                    {
                        "error_code": "run_cancelled",
                        "error": f"Cancelled ({action}) by a newer run.",
                        "finished_at": now,
                        "cancel_action": action,
                    },
                )
                await runs.release_thread(thread_id, other.id, now)
            else:
                await runs.request_cancel(other.id, action)

    async def queued(self, run: AgentRun) -> None:
        """After the creating transaction committed: stop what the strategy cancels, and wake
        the local workers."""
        for other, action in getattr(self, "_to_cancel", []):
            if other.status == RunStatus.pending.value:
                record_run_cancellation(action)
                await cancel_run_effects(self.resources, other, action)
                await self._close_log(other.id, action)
            else:
                self.registry.cancel_local(other.id, action)
        self._to_cancel = []
        # The request that queued the run logs under its ids (the access line included), as the
        # worker that runs it does.
        trace_id = self.resources.tracing.trace_id_for(str(run.id))
        bind_context(
            conversation_id=str(run.conversation_id),
            run_id=str(run.id),
            **({"trace_id": trace_id} if trace_id is not None else {}),
        )
        self.registry.wakeup.set()

    async def _close_log(self, run_id: uuid.UUID, action: str) -> None:
        events = self.registry.events
        await events.append(
            run_id, "error", {"error": "run_cancelled", "detail": f"Cancelled ({action})."}
        )
        await events.append(run_id, END_EVENT, None)
        await events.expire(run_id, self.settings.run_events_ttl_seconds)

    # Reading ------------------------------------------------------------------------------

    async def get(self, run_id: uuid.UUID, user_id: uuid.UUID | None) -> AgentRun:
        """A run (404 when missing or, with `user_id`, not that user's)."""
        async with self.resources.sessionmaker() as session:
            run = await RunRepository(session).get(run_id)
        if run is None or (user_id is not None and run.user_id != user_id):
            raise NotFound(f"No run with id {run_id}.", code="run_not_found")
        return run

    async def describe(self, run: AgentRun) -> dict[str, Any]:
        """A run as JSON: status, attempt, timings, error, queue position."""
        position: int | None = None
        if run.status == RunStatus.pending.value:
            async with self.resources.sessionmaker() as session:
                position = await RunRepository(session).queue_position(run)
        return {
            "run_id": str(run.id),
            "thread_id": str(run.conversation_id),
            "conversation_id": str(run.conversation_id),
            "graph_id": run.graph_id,
            "status": run.status,
            "attempt": run.attempt,
            "multitask_strategy": run.multitask_strategy,
            "queue_position": position,
            "created_at": run.created_at.isoformat() if run.created_at else None,
            "started_at": run.started_at.isoformat()
            if run.started_at and run.status != RunStatus.pending.value
            else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "duration_ms": run.duration_ms,
            "model": run.model,
            "usage": run.usage,
            "error": {"code": run.error_code, "detail": run.error} if run.error_code else None,
        }

    async def for_thread(
        self, thread_id: uuid.UUID, user_id: uuid.UUID, *, limit: int, offset: int
    ) -> Sequence[AgentRun]:
        """A thread's runs, newest first (404 for another user's thread)."""
        async with self.resources.sessionmaker() as session:
            if await ConversationRepository(session).get_for_user(thread_id, user_id) is None:
                raise NotFound(
                    f"No conversation with id {thread_id}.", code="conversation_not_found"
                )
            return await RunRepository(session).for_thread(thread_id, limit=limit, offset=offset)

    # Following ----------------------------------------------------------------------------

    def start_after(self, run: AgentRun, last_event_id: str | None) -> int:
        """The sequence number to follow from (400 for an id from another run)."""
        try:
            return parse_event_id(run.id, last_event_id)
        except InvalidEventId:
            raise BadRequest(
                f"Last-Event-ID {last_event_id!r} is not an event of run {run.id}.",
                code="invalid_last_event_id",
            ) from None

    async def follow(self, run: AgentRun, after: int = 0) -> AsyncIterator[LoggedEvent]:
        """The run's events after `after`, then live ones until it ends. A run that ended
        and whose log expired is replayed from its row (metadata, result or error, end)."""
        events = self.registry.events
        # The caller's row may be stale (read before the run moved on): decide on the stored one.
        async with self.resources.sessionmaker() as session:
            run = await RunRepository(session).get(run.id) or run
        if run.status not in ACTIVE_RUN_STATUSES and await events.last_seq(run.id) == 0:
            for item in self._from_row(run):
                if item.seq > after:
                    yield item
            return
        if after == 0:
            # A run paused and resumed has a segment per part: from the start means from the
            # start of its current (or, once ended, its last) part.
            ends = await events.ends(run.id)
            if run.status in ACTIVE_RUN_STATUSES:
                after = ends[-1] if ends else 0
            else:
                after = ends[-2] if len(ends) >= 2 else 0
        async for item in events.read(run.id, after):
            yield item

    @staticmethod
    def _from_row(run: AgentRun) -> list[LoggedEvent]:
        meta = {
            "run_id": str(run.id),
            "conversation_id": str(run.conversation_id),
            "thread_id": str(run.conversation_id),
            "graph_id": run.graph_id,
        }
        items = [LoggedEvent(1, "metadata", meta)]
        if run.status == RunStatus.success.value and run.result is not None:
            items.append(LoggedEvent(2, "values", run.result))
        elif run.status == RunStatus.interrupted.value and run.result is not None:
            event = run.result.get("interrupt_event") or {
                "__interrupt__": run.result.get("interrupts", [])
            }
            items.append(LoggedEvent(2, "updates", event))
        else:
            items.append(
                LoggedEvent(
                    2, "error", {"error": run.error_code or "run_failed", "detail": run.error}
                )
            )
        items.append(LoggedEvent(3, END_EVENT, None))
        return items

    async def wait(self, run: AgentRun, *, until_retry: bool = False) -> AgentRun:
        """Wait for the run to end (or, with `until_retry`, to be queued for a retry), then
        return its row as stored."""

        async def by_events() -> None:
            async for item in self.follow(run):
                if item.event == END_EVENT or (until_retry and item.event == "retry"):
                    return

        # The events say it first when they reach this process; without Redis a run executed
        # by another process is only visible in its row, so the row is checked as well.
        listener = asyncio.create_task(by_events())
        try:
            while True:
                done, _ = await asyncio.wait({listener}, timeout=WAIT_POLL_SECONDS)
                if done:
                    listener.result()
                    break
                stored = await self._stored(run.id)
                if stored.status not in ACTIVE_RUN_STATUSES:
                    return stored
                if until_retry and stored.status == RunStatus.pending.value and stored.available_at:
                    return stored
        finally:
            listener.cancel()
        return await self._stored(run.id)

    async def _stored(self, run_id: uuid.UUID) -> AgentRun:
        async with self.resources.sessionmaker() as session:
            stored = await RunRepository(session).get(run_id)
        if stored is None:
            raise NotFound(f"No run with id {run_id}.", code="run_not_found")
        return stored

    @staticmethod
    def error_of(run: AgentRun) -> MAIError:
        """The error a failed run ended with, as the MAIError a waiting caller gets."""
        error = MAIError(
            run.error or "The run failed.",
            code=run.error_code or "run_failed",
            meta={"run_id": str(run.id), "conversation_id": str(run.conversation_id)},
        )
        error.status_code = run.error_status or 500
        if error.status_code == 503:
            error.headers = {"Retry-After": "5"}
        return error

    # Control ------------------------------------------------------------------------------

    async def cancel(self, run: AgentRun, action: CancelAction = "interrupt") -> AgentRun:
        """Stop a run: pending or interrupted ones at once, a running one within a second (its
        worker stops it). `rollback` also removes the checkpoints and messages it added.
        409 for a run that already ended."""
        if action not in ("interrupt", "rollback"):
            from app.core.errors import Unprocessable

            raise Unprocessable("action must be interrupt or rollback.", code="invalid_action")
        now = self.clock.now()
        async with self.resources.sessionmaker() as session:
            runs = RunRepository(session)
            current = await runs.get(run.id)
            assert current is not None
            if current.status in (RunStatus.pending.value, RunStatus.interrupted.value):
                moved = await runs.transition(
                    run.id,
                    RunStatus.cancelled,
                    {
                        "error_code": "run_cancelled",
                        "error": f"Cancelled ({action}).",
                        "error_status": 409,
                        "finished_at": now,
                        "cancel_action": action,
                    },
                )
                await runs.release_thread(run.conversation_id, run.id, now)
                await session.commit()
                if moved:
                    record_run_transition(run.graph_id, RunStatus.cancelled.value)
                    record_run_cancellation(action)
                    await cancel_run_effects(self.resources, current, action)
                    await self._close_log(run.id, action)
                    return await self.get(run.id, None)
            elif current.status == RunStatus.running.value:
                await runs.request_cancel(run.id, action)
                await session.commit()
                self.registry.cancel_local(run.id, action)
                return current
            raise Conflict(
                f"Run {run.id} already ended ({current.status}); there is nothing to cancel.",
                code="run_not_active",
                meta={"run_id": str(run.id), "status": current.status},
            )

    async def resume_in(
        self, session: AsyncSession, run_id: uuid.UUID, resume: dict[str, Any]
    ) -> bool:
        """Queue an interrupted run again with `Command(resume=...)` (in the caller's
        transaction); retried while the LLM is down. False when it is not interrupted."""
        now = self.clock.now()
        runs = RunRepository(session)
        moved = await runs.transition(
            run_id,
            RunStatus.pending,
            {
                "command": {"resume": resume},
                "retry_llm_errors": True,
                "available_at": None,
                "base_checkpoint_id": None,
                "attempt": 0,
                "created_at": now,
            },
        )
        if moved:
            run = await runs.get(run_id)
            if run is not None:
                await runs.lock_thread(run.conversation_id, run_id, now)
                record_run_transition(run.graph_id, RunStatus.pending.value)
        return moved
