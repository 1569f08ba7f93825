"""Agent turns: lock the conversation, run the graph in the background, store the outcome.

A turn is one run of the assistant graph on the conversation's thread. It runs in a task owned
by the process (not the request), so a client that disconnects does not lose it; its events are
kept on a `RunHandle` that `/query` waits on and `/stream` relays as SSE. The outcome (assistant
message, run status, usage) is stored in the app database when the turn ends, so history reads
never touch checkpoints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.types import Command, StreamMode
from pydantic import BaseModel

from app.core.errors import Conflict, MAIError, NotFound
from app.core.llm import ResolvedModel, map_llm_error
from app.core.logging import bind_context, get_logger
from app.core.resources import Resources
from app.core.run_metrics import DEFAULT_GRAPH, GraphMetricsHandler
from app.core.runs import RunHandle, RunOutcome
from app.core.tracing import RunTrace
from app.models import AgentRun, Conversation, Message, RunStatus
from app.repositories.approvals import ApprovalRepository
from app.repositories.conversations import (
    AgentRunRepository,
    ConversationRepository,
    MessageRepository,
)
from app.services.analytics import AnalyticsService
from app.services.approvals.service import ApprovalService, PausedTurn
from app.services.memory import memory_options
from graphs.assistant import Context

log = get_logger(__name__)

TITLE_MAX_CHARS = 60
STREAM_MODES: list[StreamMode] = ["messages", "updates", "values"]


def title_from(message: str) -> str:
    """A conversation title from its first message: one line, trimmed to about 60 characters."""
    text = " ".join(message.split())
    if len(text) <= TITLE_MAX_CHARS:
        return text or "New conversation"
    cut = text[: TITLE_MAX_CHARS - 1]
    if " " in cut[TITLE_MAX_CHARS // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def to_jsonable(value: Any) -> Any:
    """Graph output (messages, typed dicts, dataclasses) as plain JSON values."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, BaseMessage):
        return to_jsonable(value.model_dump(warnings=False))
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", warnings=False)
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def _message_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of LangGraph's per-token metadata (node, step, model, thread)."""
    kept: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, str | int | float | bool) or value is None:
            kept[key] = value
        elif isinstance(value, list | tuple) and all(
            isinstance(item, str | int | float | bool) for item in value
        ):
            kept[key] = list(value)
    return kept


def _tool_calls(tool_runs: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": run.get("id"),
            "name": run.get("name"),
            "args": to_jsonable(run.get("args") or {}),
            "result": to_jsonable(run.get("result")),
            "duration_ms": run.get("duration_ms"),
            "status": run.get("status"),
        }
        for run in tool_runs or []
        if isinstance(run, Mapping)
    ]


def _usage(value: Any) -> dict[str, int]:
    usage = value if isinstance(value, Mapping) else {}
    return {
        "input_tokens": int(usage.get("input_tokens") or 0),
        "output_tokens": int(usage.get("output_tokens") or 0),
    }


@dataclass(frozen=True, slots=True)
class TurnResult:
    """A completed turn, as /query answers it and /stream's final `values` event carries it."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID
    run_id: uuid.UUID
    status: str
    answer: str
    tool_calls: list[dict[str, Any]]
    citations: list[dict[str, Any]]
    usage: dict[str, int]
    duration_ms: float
    model: str
    # Long-term memories recalled into this turn's prompt.
    memories: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The result as JSON values."""
        return {
            "conversation_id": str(self.conversation_id),
            "message_id": str(self.message_id),
            "run_id": str(self.run_id),
            "status": self.status,
            "answer": self.answer,
            "tool_calls": [
                {k: call[k] for k in ("name", "args", "result", "duration_ms", "status")}
                for call in self.tool_calls
            ],
            "citations": self.citations,
            "usage": self.usage,
            "duration_ms": self.duration_ms,
            "model": self.model,
            "memories": self.memories,
        }


@dataclass(frozen=True, slots=True)
class TurnFailure:
    """Why a turn failed, as stored on the run and sent in a stream's `error` event."""

    code: str
    detail: str
    error: MAIError


class AgentTurnFailed(MAIError):
    """A turn failed for a reason that is not the caller's (a bug, a broken tool registry)."""

    status_code = 500
    code = "agent_failed"
    default_detail = "The agent failed on our side; the error was logged with this run id."


@dataclass
class _Turn:
    handle: RunHandle
    user_id: uuid.UUID
    message: str
    resolved: ResolvedModel | None
    started_at: datetime
    started_perf: float
    streamed: bool
    ttft_ms: float | None = None
    # A resumed turn (issue 4): the Command to continue with, and the tokens already reported
    # when it paused (analytics count only what the resumed part adds).
    resume: Command[Any] | None = None
    usage_offset: dict[str, int] | None = None
    # The state's token usage so far: a turn that fails midway has still used tokens.
    usage: Any = None
    # Langfuse tracing of the run (disabled: no callbacks); set when the run task starts.
    trace: RunTrace = dataclasses.field(default_factory=RunTrace)

    @property
    def model(self) -> str | None:
        return self.resolved.name if self.resolved is not None else None


class AgentService:
    """Starts turns and owns their lifecycle; one instance per request is fine (it is stateless)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.clock = resources.clock

    def _stale_before(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.settings.agent_run_stale_seconds)

    async def start_turn(
        self,
        user_id: uuid.UUID,
        message: str,
        conversation_id: uuid.UUID | None = None,
        *,
        streamed: bool = False,
    ) -> RunHandle:
        """Lock (or create) the conversation, store the user message, start the graph run.

        404 for a conversation that is not the user's, 409 while another turn runs on it, 503
        when the model cannot be resolved (the user message is kept and the run recorded failed).
        """
        run_id = uuid.uuid4()
        now = self.clock.now()
        async with self.resources.sessionmaker() as session:
            conversations = ConversationRepository(session)
            messages = MessageRepository(session)
            position = 0
            if conversation_id is None:
                conversation = await conversations.add(
                    Conversation(
                        user_id=user_id,
                        title=title_from(message),
                        last_activity_at=now,
                        active_run_id=run_id,
                        active_run_heartbeat_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
                conversation_id = conversation.id
            else:
                previous = await conversations.active_run_of(conversation_id)
                if not await conversations.acquire(
                    conversation_id, user_id, run_id, now, self._stale_before(now)
                ):
                    await self._refuse(conversations, conversation_id, user_id)
                waiting = await ApprovalRepository(session).pending_for_conversation(
                    conversation_id
                )
                if waiting:
                    # Raising rolls the lock back: the conversation stays as it was.
                    undecided = [a for a in waiting if a.status == "pending"]
                    raise Conflict(
                        (
                            "This conversation is waiting on "
                            + ", ".join(f"approval {a.id} ({a.tool})" for a in undecided)
                            + "; approve, reject or modify it (POST /api/v1/approvals/{id}/...) "
                            "before sending the next message."
                        )
                        if undecided
                        else (
                            "This conversation's approved calls have not resumed yet (the "
                            "model was unreachable); they are retried shortly. Send the next "
                            "message once they have."
                        ),
                        code="approval_pending",
                        meta={
                            "conversation_id": str(conversation_id),
                            "approval_ids": [str(a.id) for a in waiting],
                        },
                    )
                if previous is not None:
                    # The lock was stale: its process died mid-turn.
                    await AgentRunRepository(session).finish(
                        previous,
                        {
                            "status": RunStatus.failed.value,
                            "error_code": "run_abandoned",
                            "error": "The service stopped while this turn ran.",
                            "finished_at": now,
                        },
                    )
                position = await messages.next_position(conversation_id)
            await AgentRunRepository(session).add(
                AgentRun(
                    id=run_id,
                    conversation_id=conversation_id,
                    user_id=user_id,
                    status=RunStatus.running.value,
                    started_at=now,
                )
            )
            await messages.add(
                Message(
                    conversation_id=conversation_id,
                    position=position,
                    role="user",
                    content=message,
                    run_id=run_id,
                    created_at=now,
                )
            )
            await session.commit()

        handle = RunHandle(run_id=run_id, conversation_id=conversation_id)
        self._bind_log_context(run_id, conversation_id)
        started_perf = time.perf_counter()
        assert self.resources.chat_models is not None, "the agent runtime is not started"
        try:
            resolved = await self.resources.chat_models.get()
        except MAIError as error:
            turn = _Turn(handle, user_id, message, None, now, started_perf, streamed)
            await self._record_failure(turn, TurnFailure(error.code, error.detail, error))
            raise
        turn = _Turn(handle, user_id, message, resolved, now, started_perf, streamed)
        handle.emit("metadata", {"run_id": str(run_id), "conversation_id": str(conversation_id)})
        self.resources.runs.start(handle, self._execute(turn))
        return handle

    async def resume_turn(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        run_id: uuid.UUID,
        resume: dict[str, Any],
        usage_offset: dict[str, int] | None = None,
        streamed: bool = False,
    ) -> RunHandle:
        """Continue a run paused for approvals with `Command(resume=...)` (issue 4).

        The caller has already locked the conversation for `run_id` and marked the run running
        (ApprovalService claims the resume). `user_id` is the conversation's owner.
        """
        handle = RunHandle(run_id=run_id, conversation_id=conversation_id)
        self._bind_log_context(run_id, conversation_id)
        now = self.clock.now()
        started_perf = time.perf_counter()
        assert self.resources.chat_models is not None, "the agent runtime is not started"
        command: Command[Any] = Command(resume=resume)
        try:
            resolved = await self.resources.chat_models.get()
        except MAIError as error:
            turn = _Turn(handle, user_id, "", None, now, started_perf, streamed, resume=command)
            await self._record_failure(turn, TurnFailure(error.code, error.detail, error))
            raise
        turn = _Turn(
            handle,
            user_id,
            "",
            resolved,
            now,
            started_perf,
            streamed,
            resume=command,
            usage_offset=usage_offset,
        )
        handle.emit("metadata", {"run_id": str(run_id), "conversation_id": str(conversation_id)})
        self.resources.runs.start(handle, self._execute(turn))
        return handle

    async def _refuse(
        self, conversations: ConversationRepository, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> None:
        conversation = await conversations.get_for_user(conversation_id, user_id)
        if conversation is None:
            raise NotFound(
                f"No conversation with id {conversation_id}.", code="conversation_not_found"
            )
        raise Conflict(
            "A turn is still running on this conversation; wait for it to finish, then send "
            "the next message.",
            code="conversation_busy",
            meta={
                "conversation_id": str(conversation_id),
                "run_id": str(conversation.active_run_id),
            },
        )

    def build_context(self, turn: _Turn) -> Context:
        """The graph's run dependencies for this turn, from Settings and the shared resources."""
        settings = self.settings
        assert turn.resolved is not None
        return Context(
            user_id=str(turn.user_id),
            conversation_id=str(turn.handle.conversation_id),
            run_id=str(turn.handle.run_id),
            model=turn.resolved.name,
            llm_base_url=settings.llm_base_url,
            llm_api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            llm=turn.resolved.chat_model,
            max_tool_iterations=settings.max_tool_iterations,
            tool_timeout_seconds=settings.tool_timeout_seconds,
            context_tokens=settings.llm_context_tokens,
            max_history_messages=settings.agent_max_history_messages,
            retriever=self.resources.retriever,
            tools=self.resources.tool_registry,
            approval_required=frozenset(settings.approval_required_tools) or None,
            approval_exempt=frozenset(settings.approval_exempt_tools) or None,
            approval_timeout_seconds=settings.approval_timeout_seconds,
            clock=self.clock.now,
            memory=memory_options(settings),
        )

    def _bind_log_context(self, run_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        """Put the run's ids (and trace id) on every log line of this request and of the run
        task, which inherits the context."""
        bind_context(conversation_id=str(conversation_id), run_id=str(run_id))
        trace_id = self.resources.tracing.trace_id_for(str(run_id))
        if trace_id is not None:
            bind_context(trace_id=trace_id)

    async def _execute(self, turn: _Turn) -> None:
        """Run the turn inside its trace (Langfuse, when configured)."""
        handle = turn.handle
        with self.resources.tracing.trace_run(
            graph=DEFAULT_GRAPH,
            run_id=str(handle.run_id),
            user_id=str(turn.user_id),
            conversation_id=str(handle.conversation_id),
            model=turn.model,
            input=to_jsonable(turn.resume.resume) if turn.resume is not None else turn.message,
        ) as trace:
            turn.trace = trace
            await self._run_graph(turn)

    async def _run_graph(self, turn: _Turn) -> None:
        handle = turn.handle
        graph = self.resources.agent_graph
        assert graph is not None, "the agent runtime is not started"
        heartbeat = asyncio.create_task(self._heartbeat(handle))
        try:
            final: Any = None
            interrupts: list[Any] = []
            graph_input: Any = (
                turn.resume
                if turn.resume is not None
                else {"messages": [HumanMessage(content=turn.message)]}
            )
            stream: AsyncIterator[Any] = graph.astream(
                graph_input,
                config={
                    "configurable": {"thread_id": str(handle.conversation_id)},
                    "callbacks": [*turn.trace.callbacks, GraphMetricsHandler(turn.model)],
                },
                context=self.build_context(turn),
                stream_mode=STREAM_MODES,
            )
            async for part in stream:
                # With a list of modes, LangGraph yields (mode, chunk) pairs.
                mode: str = part[0]
                chunk: Any = part[1]
                if mode == "messages":
                    token, metadata = chunk
                    if turn.ttft_ms is None:
                        turn.ttft_ms = (time.perf_counter() - turn.started_perf) * 1000
                    handle.emit("messages", [to_jsonable(token), _message_metadata(metadata)])
                elif mode == "updates":
                    if isinstance(chunk, Mapping) and "__interrupt__" in chunk:
                        # Sent once the approvals are stored, so a client can decide them.
                        interrupts.extend(chunk["__interrupt__"])
                        continue
                    handle.emit("updates", to_jsonable(chunk))
                elif mode == "values":
                    final = chunk
                    if isinstance(chunk, Mapping):
                        turn.usage = chunk.get("usage")
            result: TurnResult | PausedTurn
            if interrupts:
                result = await self._record_pause(turn, interrupts, final)
            elif not isinstance(final, Mapping):
                raise RuntimeError("the graph ended without a state")
            else:
                result = await self._record_success(turn, final)
        except asyncio.CancelledError:
            error = MAIError(
                "The service stopped before this turn finished; send the message again.",
                code="run_interrupted",
            )
            error.status_code = 503
            await asyncio.shield(
                self._record_failure(
                    turn, TurnFailure(error.code, error.detail, error), RunStatus.interrupted
                )
            )
            raise
        except Exception as exc:
            await self._record_failure(turn, self._failure_of(exc, handle))
        else:
            if isinstance(result, PausedTurn):
                await self._finish_pause(turn, result)
                return
            handle.emit("values", result.as_json())
            handle.emit("end", None)
            handle.finish(result)
            # After the caller has its answer: hooks (analytics) never delay the response.
            await self.resources.runs.notify(
                self._outcome(
                    turn,
                    RunStatus.completed,
                    result.usage,
                    result.tool_calls,
                    result.duration_ms,
                    self.clock.now(),
                    None,
                )
            )
        finally:
            heartbeat.cancel()

    def _failure_of(self, exc: Exception, handle: RunHandle) -> TurnFailure:
        mapped = map_llm_error(exc, self.settings.llm_base_url)
        if mapped is not None:
            return TurnFailure(mapped.code, mapped.detail, mapped)
        if isinstance(exc, MAIError):
            return TurnFailure(exc.code, exc.detail, exc)
        log.exception("agent_run_error", run_id=str(handle.run_id))
        error = AgentTurnFailed(
            f"The agent failed on our side ({type(exc).__name__}); the error was logged with "
            f"run id {handle.run_id}.",
            meta={"run_id": str(handle.run_id)},
        )
        return TurnFailure(error.code, f"{error.detail} {exc}"[:2000], error)

    async def _heartbeat(self, handle: RunHandle) -> None:
        interval = self.settings.agent_run_heartbeat_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.resources.sessionmaker() as session:
                    await ConversationRepository(session).heartbeat(
                        handle.conversation_id, handle.run_id, self.clock.now()
                    )
                    await session.commit()
            except Exception:
                log.warning("agent_run_heartbeat_failed", run_id=str(handle.run_id))

    async def _record_success(self, turn: _Turn, state: Mapping[str, Any]) -> TurnResult:
        handle = turn.handle
        now = self.clock.now()
        duration_ms = round((time.perf_counter() - turn.started_perf) * 1000, 2)
        tool_calls = _tool_calls(state.get("tool_runs"))
        citations = [to_jsonable(c) for c in state.get("citations") or []]
        usage = _usage(state.get("usage"))
        answer = str(state.get("answer") or "")
        turn.trace.finish(output=answer)
        async with self.resources.sessionmaker() as session:
            messages = MessageRepository(session)
            stored = await messages.add(
                Message(
                    conversation_id=handle.conversation_id,
                    position=await messages.next_position(handle.conversation_id),
                    role="assistant",
                    content=answer,
                    tool_calls=tool_calls,
                    citations=citations,
                    usage=usage,
                    run_id=handle.run_id,
                    model=turn.model,
                    created_at=now,
                )
            )
            await AgentRunRepository(session).finish(
                handle.run_id,
                {
                    "status": RunStatus.completed.value,
                    "model": turn.model,
                    "finished_at": now,
                    "duration_ms": duration_ms,
                    "usage": usage,
                },
            )
            await ConversationRepository(session).release(
                handle.conversation_id, handle.run_id, now
            )
            await session.commit()
        memory_usage = _usage(state.get("memory_usage"))
        if memory_usage["input_tokens"] or memory_usage["output_tokens"]:
            await AnalyticsService(self.resources).record_memory_step(
                user_id=turn.user_id,
                conversation_id=handle.conversation_id,
                run_id=handle.run_id,
                model=turn.model,
                input_tokens=memory_usage["input_tokens"],
                output_tokens=memory_usage["output_tokens"],
            )
        log.info(
            "agent_run_completed",
            run_id=str(handle.run_id),
            conversation_id=str(handle.conversation_id),
            duration_ms=duration_ms,
            tools=len(tool_calls),
            **usage,
        )
        return TurnResult(
            conversation_id=handle.conversation_id,
            message_id=stored.id,
            run_id=handle.run_id,
            status=RunStatus.completed.value,
            answer=answer,
            tool_calls=tool_calls,
            citations=citations,
            usage=usage,
            duration_ms=duration_ms,
            model=turn.model or "",
            memories=[to_jsonable(m) for m in state.get("memories") or []],
        )

    async def _record_pause(self, turn: _Turn, interrupts: list[Any], state: Any) -> PausedTurn:
        """Store the approvals the turn waits for, park the run (awaiting_approval) and unlock
        the conversation; the run resumes when they are decided (issue 4)."""
        handle = turn.handle
        values: Mapping[str, Any] = state if isinstance(state, Mapping) else {}
        usage = _usage(values.get("usage"))
        tool_calls = _tool_calls(values.get("tool_runs"))
        pending = [
            (str(getattr(item, "id", "")), getattr(item, "value", None)) for item in interrupts
        ]
        approvals = await ApprovalService(self.resources).record_pause(
            run_id=handle.run_id,
            conversation_id=handle.conversation_id,
            user_id=turn.user_id,
            interrupts=pending,
            usage=usage,
            model=turn.model,
        )
        duration_ms = round((time.perf_counter() - turn.started_perf) * 1000, 2)
        turn.trace.finish(output={"status": "awaiting_approval", "approvals": len(approvals)})
        log.info(
            "agent_run_awaiting_approval",
            run_id=str(handle.run_id),
            conversation_id=str(handle.conversation_id),
            approvals=len(approvals),
        )
        return PausedTurn(
            conversation_id=handle.conversation_id,
            run_id=handle.run_id,
            interrupt_id=pending[0][0],
            approvals=approvals,
            tool_calls=tool_calls,
            usage=usage,
            duration_ms=duration_ms,
            model=turn.model or "",
        )

    async def _finish_pause(self, turn: _Turn, paused: PausedTurn) -> None:
        """Announce the pause (`updates` {"__interrupt__": [...]}, then `end`), hand the
        caller its answer, then run the hooks (analytics) without delaying it."""
        handle = turn.handle
        handle.emit("updates", paused.interrupt_event())
        handle.emit("end", None)
        handle.finish(paused)
        await self.resources.runs.notify(
            self._outcome(
                turn,
                RunStatus.awaiting_approval,
                paused.usage,
                paused.tool_calls,
                paused.duration_ms,
                self.clock.now(),
                None,
            )
        )

    async def _record_failure(
        self, turn: _Turn, failure: TurnFailure, status: RunStatus = RunStatus.failed
    ) -> None:
        """Store the failed run (the user message is already stored) and unlock; emit `error`."""
        handle = turn.handle
        now = self.clock.now()
        duration_ms = round((time.perf_counter() - turn.started_perf) * 1000, 2)
        try:
            async with self.resources.sessionmaker() as session:
                await AgentRunRepository(session).finish(
                    handle.run_id,
                    {
                        "status": status.value,
                        "model": turn.model,
                        "error_code": failure.code,
                        "error": failure.detail,
                        "finished_at": now,
                        "duration_ms": duration_ms,
                    },
                )
                await ConversationRepository(session).release(
                    handle.conversation_id, handle.run_id, now
                )
                await session.commit()
        except Exception:
            # The stale-lock takeover unlocks the conversation later if this write failed.
            log.exception("agent_run_not_recorded", run_id=str(handle.run_id))
        log.warning(
            "agent_run_failed",
            run_id=str(handle.run_id),
            conversation_id=str(handle.conversation_id),
            status=status.value,
            error=failure.code,
        )
        turn.trace.finish(error=failure.code)
        handle.emit("error", {"error": failure.code, "detail": failure.detail})
        handle.emit("end", None)
        handle.finish(error=failure.error)
        # Tokens the turn used before it failed still count (usage events, budgets).
        await self.resources.runs.notify(
            self._outcome(turn, status, _usage(turn.usage), [], duration_ms, now, failure)
        )

    def _outcome(
        self,
        turn: _Turn,
        status: RunStatus,
        usage: dict[str, int],
        tool_calls: list[dict[str, Any]],
        duration_ms: float,
        finished_at: datetime,
        failure: TurnFailure | None,
    ) -> RunOutcome:
        if turn.usage_offset:
            usage = {
                key: max(0, usage[key] - int(turn.usage_offset.get(key, 0)))
                for key in ("input_tokens", "output_tokens")
            }
        return RunOutcome(
            run_id=turn.handle.run_id,
            conversation_id=turn.handle.conversation_id,
            user_id=turn.user_id,
            status=status.value,
            model=turn.model,
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            duration_ms=duration_ms,
            ttft_ms=turn.ttft_ms,
            streamed=turn.streamed,
            tool_calls=tool_calls,
            error_code=failure.code if failure else None,
            error=failure.detail if failure else None,
            started_at=turn.started_at,
            finished_at=finished_at,
        )


async def recover_abandoned_runs(resources: Resources) -> int:
    """Mark turns whose process died (lock heartbeat stale) failed and unlock their conversations.

    Chosen over resuming from the checkpoint: the caller that started the turn is gone, and a
    resumed turn could repeat tool side effects nobody asked for again. The user message stays
    stored, so the user can send it again. Returns how many runs were recovered.
    """
    now = resources.clock.now()
    stale_before = now - timedelta(seconds=resources.settings.agent_run_stale_seconds)
    recovered = 0
    async with resources.sessionmaker() as session:
        conversations = ConversationRepository(session)
        runs = AgentRunRepository(session)
        for conversation_id, run_id in await conversations.stale_locks(stale_before):
            if resources.runs.get(run_id) is not None:
                continue
            if await conversations.release_stale(conversation_id, run_id, stale_before):
                await runs.finish(
                    run_id,
                    {
                        "status": RunStatus.failed.value,
                        "error_code": "run_abandoned",
                        "error": "The service stopped while this turn ran.",
                        "finished_at": now,
                    },
                )
                recovered += 1
        await session.commit()
    if recovered:
        log.warning("agent_runs_recovered", count=recovered)
    return recovered
