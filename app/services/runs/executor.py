"""The one executor: runs a claimed run from its row to an end state, and nothing else does.

It builds the graph's input (or continues from the last checkpoint the run wrote, after a crash
or a retry), streams the graph, appends every part to the run's event log, and records the end
in one transaction: `success` (the answer stored as the thread's assistant message),
`interrupted` (the interrupt handlers, such as approvals, record what the run waits for),
`error`, `timeout` or `cancelled`. A run that fails because the LLM is unreachable and may be
retried goes back to `pending` with a backoff; a run stopped by a shutdown goes back to
`pending` at once, to be resumed from its checkpoint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    BaseMessageChunk,
    HumanMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.schema import StreamEvent
from langgraph.types import Command, StreamMode

from app.core.db import is_database_outage
from app.core.errors import MAIError
from app.core.graphs import GraphEntry
from app.core.llm import ResolvedModel, map_llm_error
from app.core.logging import bind_context, get_logger
from app.core.metrics import (
    RunRetryReason,
    record_citation_support,
    record_run_cancellation,
    record_run_retry,
    record_run_transition,
)
from app.core.resources import Resources
from app.core.run_events import END_EVENT
from app.core.run_metrics import GraphMetricsHandler
from app.core.runs import RunOutcome
from app.core.tracing import RunTrace
from app.models import AgentRun, Message, RunStatus
from app.repositories.conversations import MessageRepository
from app.repositories.runs import RunRepository
from app.services.runs.checkpoints import delete_checkpoints_after, latest_checkpoint_id
from app.services.runs.context import build_context
from app.services.runs.jsonable import (
    message_metadata,
    to_jsonable,
    tool_calls_of,
    usage_of,
)

log = get_logger(__name__)

# The modes the executor always needs: node updates (interrupts) and the state (the result).
REQUIRED_MODES = ("updates", "values")
DEFAULT_STREAM_MODES = ("messages", "updates", "values")
# Runs created through the LangGraph API (`AgentRun.protocol`).
LANGGRAPH_PROTOCOL = "langgraph"
STREAM_MODES = frozenset(
    {"values", "updates", "messages", "custom", "debug", "tasks", "checkpoints", "events"}
)
# Not a graph stream mode: the run is streamed through `astream_events` and every callback
# event is emitted under this name.
EVENTS_MODE = "events"
# Callback events tagged so are internal to LangSmith; LangGraph's server does not stream them.
HIDDEN_TAG = "langsmith:hidden"


class AgentTurnFailed(MAIError):
    """A run failed for a reason that is not the caller's (a bug, a broken tool registry)."""

    status_code = 500
    code = "agent_failed"
    default_detail = "The agent failed on our side; the error was logged with this run id."


class RunTimedOut(MAIError):
    """The run took longer than MAI_RUN_TIMEOUT_SECONDS."""

    status_code = 504
    code = "run_timeout"
    default_detail = "The run took longer than MAI_RUN_TIMEOUT_SECONDS and was stopped."


class RunCancelled(MAIError):
    """The run was cancelled."""

    status_code = 409
    code = "run_cancelled"
    default_detail = "The run was cancelled."


@dataclass
class Execution:
    """What one attempt of a run tracks while it streams."""

    run: AgentRun
    entry: GraphEntry
    resolved: ResolvedModel | None
    started_perf: float = field(default_factory=time.perf_counter)
    ttft_ms: float | None = None
    usage: Any = None
    final: Any = None
    interrupts: list[Any] = field(default_factory=list)
    # Stopped before or after a node named in interrupt_before/interrupt_after.
    paused: bool = False
    # LangGraph `messages` mode: each message streamed so far, by id, accumulated.
    messages: dict[str, Any] = field(default_factory=dict)
    trace: RunTrace = field(default_factory=RunTrace)

    @property
    def model(self) -> str | None:
        """The model's name, once resolved."""
        return self.resolved.name if self.resolved is not None else self.run.model

    def elapsed_ms(self) -> float:
        """Milliseconds since this attempt started."""
        return round((time.perf_counter() - self.started_perf) * 1000, 2)


def graph_input(run: AgentRun) -> Any:
    """The graph input of a run's first attempt: its Command, or its input."""
    if run.command:
        command = dict(run.command)
        return Command(
            resume=command.get("resume"),
            update=command.get("update"),
            goto=command.get("goto") or (),
        )
    value = run.input
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list):
        messages = [
            HumanMessage(content=str(m.get("content", "")))
            if isinstance(m, Mapping) and m.get("role") in ("user", "human")
            else m
            for m in value["messages"]
        ]
        return {**value, "messages": messages}
    return value


def end_user_of(run: AgentRun) -> str | None:
    """The caller's end-user id the run was started for (OpenAI's `user`), if any."""
    value = ((run.config or {}).get("metadata") or {}).get("end_user")
    return str(value) if value else None


def trace_input(run: AgentRun) -> Any:
    """What a trace shows as the run's input: the user's words for a chat message, else the
    input (or resume command) as JSON."""
    value = run.input
    if not run.command and isinstance(value, Mapping):
        messages = value.get("messages")
        if isinstance(messages, list) and len(messages) == 1:
            only = messages[0]
            if isinstance(only, Mapping) and only.get("role") in ("user", "human"):
                return only.get("content")
    return to_jsonable(run.command or value)


def answer_of(state: Mapping[str, Any]) -> str:
    """The text a run answered: the state's `answer`, else the last AI message, else JSON."""
    answer = state.get("answer")
    if isinstance(answer, str):
        return answer
    messages = state.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], AIMessage):
        content = messages[-1].content
        return content if isinstance(content, str) else json.dumps(to_jsonable(content))
    return json.dumps(to_jsonable(dict(state)), ensure_ascii=False, default=str)


class RunExecutor:
    """Executes runs claimed by this process's worker."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.clock = resources.clock
        self.registry = resources.runs

    async def emit(self, run_id: uuid.UUID, event: str, data: Any) -> None:
        """Append an event to the run's log; a log that fails never fails the run."""
        try:
            await self.registry.events.append(run_id, event, data)
        except Exception:
            log.exception("run_event_not_logged", run_id=str(run_id), run_event=event)

    async def _finish(self, run_id: uuid.UUID, outcome: RunOutcome) -> None:
        """Run the hooks (usage, approvals, metrics), then end the event log: a client that saw
        the end finds the run's usage recorded and its budget up to date."""
        await self.registry.notify(outcome)
        await self.emit(run_id, END_EVENT, None)
        try:
            await self.registry.events.expire(run_id, self.settings.run_events_ttl_seconds)
        except Exception:
            log.warning("run_events_not_expired", run_id=str(run_id))

    async def execute(self, run_id: uuid.UUID) -> None:
        """Run one claimed run (status running, lease held) to an end state."""
        async with self.resources.sessionmaker() as session:
            run = await RunRepository(session).get(run_id)
        if run is None or run.status != RunStatus.running.value:
            return
        metadata = (run.config or {}).get("metadata") or {}
        bind_context(
            conversation_id=str(run.conversation_id),
            run_id=str(run.id),
            user_id=str(run.user_id),
            **({"request_id": str(metadata["request_id"])} if metadata.get("request_id") else {}),
        )
        trace_id = self.resources.tracing.trace_id_for(str(run.id))
        if trace_id is not None:
            bind_context(trace_id=trace_id)
        assert self.resources.graphs is not None, "the run engine is not started"
        entry = self.resources.graphs.get(run.graph_id)
        execution = Execution(run=run, entry=entry, resolved=None)
        try:
            assert self.resources.chat_models is not None
            execution.resolved = await self.resources.chat_models.get()
            # After the model is known: a run that cannot start fails before any metadata,
            # so a stream can still answer it as an HTTP error.
            await self.emit(run.id, "metadata", self._metadata(run))
            async with asyncio.timeout(self.settings.run_timeout_seconds):
                await self._stream(execution)
        except asyncio.CancelledError:
            action = self.registry.cancel_action_of(run.id)
            await asyncio.shield(self._stopped(execution, action))
            if action is None:
                raise
            return
        except TimeoutError:
            error = RunTimedOut()
            await self._failed(execution, error, RunStatus.timeout)
            return
        except Exception as exc:
            await self._on_exception(execution, exc)
            return
        if execution.interrupts or execution.paused:
            await self._interrupted(execution)
        else:
            await self._succeeded(execution)

    @staticmethod
    def _metadata(run: AgentRun) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "run_id": str(run.id),
            "conversation_id": str(run.conversation_id),
            "thread_id": str(run.conversation_id),
            "graph_id": run.graph_id,
        }
        if run.attempt > 1:
            meta["attempt"] = run.attempt
        return meta

    # Streaming ----------------------------------------------------------------------------

    async def _stream(self, execution: Execution) -> None:
        run = execution.run
        graph = execution.entry.graph
        extra: dict[str, Any] = dict(run.config or {})
        config = cast(
            RunnableConfig,
            {
                **extra,
                "configurable": {
                    **((run.config or {}).get("configurable") or {}),
                    "thread_id": str(run.conversation_id),
                },
                "metadata": {
                    **((run.config or {}).get("metadata") or {}),
                    "run_id": str(run.id),
                    "graph_id": run.graph_id,
                    "user_id": str(run.user_id),
                },
            },
        )
        latest = await latest_checkpoint_id(graph, config)
        if run.base_checkpoint_id is None:
            # First claim of this run (or of its resume): remember where the thread stood.
            run.base_checkpoint_id = latest or ""
            async with self.resources.sessionmaker() as session:
                await RunRepository(session).update(
                    run.id, {"base_checkpoint_id": run.base_checkpoint_id}
                )
                await session.commit()
        progressed = (latest or "") != run.base_checkpoint_id
        value: Any = None if progressed else graph_input(run)
        if progressed:
            # Continue from where the previous attempt got, not from the requested checkpoint.
            config["configurable"].pop("checkpoint_id", None)
            snapshot = await graph.aget_state(config)
            if not snapshot.tasks:
                # The graph had finished when the previous attempt stopped: record it. (A
                # step whose tasks all wrote their results but whose checkpoint was not yet
                # stored has no `next` but still has tasks: resuming applies their writes.)
                execution.final = snapshot.values
                execution.usage = (
                    snapshot.values.get("usage") if isinstance(snapshot.values, Mapping) else None
                )
                return
        requested = list(run.stream_modes or DEFAULT_STREAM_MODES)
        modes = cast(
            list[StreamMode], sorted((set(requested) | set(REQUIRED_MODES)) - {EVENTS_MODE})
        )
        with self.resources.tracing.trace_run(
            graph=run.graph_id,
            run_id=str(run.id),
            user_id=str(run.user_id),
            conversation_id=str(run.conversation_id),
            model=execution.model,
            input=trace_input(run),
            end_user=end_user_of(run),
        ) as trace:
            execution.trace = trace
            trace_id = self.resources.tracing.trace_id_for(str(run.id))
            if trace_id is not None:
                bind_context(trace_id=trace_id)
            config["callbacks"] = [
                *trace.callbacks,
                GraphMetricsHandler(execution.model, graph=run.graph_id),
            ]
            context = build_context(self.resources, run, execution.resolved, execution.entry)
            options = run.kwargs or {}
            stream_options: dict[str, Any] = {
                "context": context,
                "stream_mode": modes,
                "interrupt_before": options.get("interrupt_before"),
                "interrupt_after": options.get("interrupt_after"),
                "subgraphs": True,
                "durability": options.get("durability") or self.settings.run_durability,
            }
            parts: AsyncIterator[Any] = (
                self._event_parts(execution, value, config, stream_options)
                if EVENTS_MODE in requested
                else graph.astream(value, config=config, **stream_options)
            )
            try:
                async for namespace, mode, chunk in parts:
                    await self._relay(execution, mode, chunk, requested, tuple(namespace))
                if not execution.interrupts and (
                    options.get("interrupt_before") or options.get("interrupt_after")
                ):
                    unlatched = dict(config["configurable"])
                    unlatched.pop("checkpoint_id", None)
                    snapshot = await graph.aget_state(
                        cast(RunnableConfig, {"configurable": unlatched})
                    )
                    execution.paused = bool(snapshot.next)
            except Exception as exc:
                # Recorded while the run's span is open; the caller maps the error again.
                mapped = map_llm_error(exc, self.settings.llm_base_url)
                code = mapped.code if mapped is not None else getattr(exc, "code", None)
                trace.finish(error=str(code or type(exc).__name__))
                raise
            final = execution.final if isinstance(execution.final, Mapping) else {}
            if execution.interrupts:
                trace.finish(
                    output={"status": "interrupted", "interrupts": len(execution.interrupts)}
                )
            else:
                trace.finish(output=answer_of(final))

    async def _event_parts(
        self,
        execution: Execution,
        value: Any,
        config: RunnableConfig,
        stream_options: dict[str, Any],
    ) -> AsyncIterator[tuple[tuple[str, ...], str, Any]]:
        """The graph's stream parts for a run that asked for `events`, as LangGraph's server
        makes them: the graph runs under `astream_events` (v2), the root run's `on_chain_stream`
        events are the ordinary `(namespace, mode, chunk)` parts, and every other callback
        event is emitted as an `events` event."""
        # A fresh root id per attempt, so the root's stream events are told apart from the
        # same-named events of subgraphs and nested runnables.
        root = uuid.uuid4()
        rooted = cast(RunnableConfig, {**config, "run_id": root})
        # An async generator (closed with the run, so a cancelled run stops the graph).
        events = cast(
            AsyncGenerator[StreamEvent, None],
            execution.entry.graph.astream_events(value, rooted, version="v2", **stream_options),
        )
        async with aclosing(events):
            async for event in events:
                if HIDDEN_TAG in (event.get("tags") or ()):
                    continue
                if event["event"] == "on_chain_stream" and event["run_id"] == str(root):
                    namespace, mode, chunk = event["data"]["chunk"]
                    yield tuple(namespace), mode, chunk
                else:
                    await self.emit(execution.run.id, EVENTS_MODE, to_jsonable(event))

    async def _relay(
        self,
        execution: Execution,
        mode: str,
        chunk: Any,
        requested: list[str],
        namespace: tuple[str, ...] = (),
    ) -> None:
        run = execution.run
        run_id = run.id
        named = (run.kwargs or {}).get("stream_mode")
        if namespace:
            # A subgraph's part: only streamed to clients that asked for subgraphs, under
            # LangGraph's `mode|namespace` name; the run's own bookkeeping uses the root's.
            if not (run.kwargs or {}).get("stream_subgraphs") or mode not in requested:
                return
            if mode == "updates" and isinstance(chunk, Mapping) and "__interrupt__" in chunk:
                return
            if mode == "messages":
                await self._relay_messages(execution, chunk, named, namespace)
                return
            await self.emit(run_id, "|".join((mode, *namespace)), to_jsonable(chunk))
            return
        if mode == "messages":
            if execution.ttft_ms is None:
                execution.ttft_ms = execution.elapsed_ms()
            if "messages" in requested:
                await self._relay_messages(execution, chunk, named, namespace)
        elif mode == "updates":
            if isinstance(chunk, Mapping) and "__interrupt__" in chunk:
                # Announced once recorded (approvals stored), so a client can act on them.
                execution.interrupts.extend(chunk["__interrupt__"])
                return
            if "updates" in requested:
                await self.emit(run_id, "updates", to_jsonable(chunk))
        elif mode == "values":
            execution.final = chunk
            if isinstance(chunk, Mapping):
                execution.usage = chunk.get("usage")
            if run.protocol == LANGGRAPH_PROTOCOL and "values" in requested:
                await self.emit(run_id, "values", to_jsonable(chunk))
        elif mode in requested:
            await self.emit(run_id, mode, to_jsonable(chunk))

    async def _relay_messages(
        self,
        execution: Execution,
        chunk: Any,
        named: list[str] | None,
        namespace: tuple[str, ...],
    ) -> None:
        """A message part as `messages` (a [message, metadata] tuple) and, for LangGraph's
        `messages` mode, as `messages/metadata` when a message starts and then
        `messages/partial` (the message so far) or `messages/complete` (LangGraph's server
        names these without a subgraph namespace)."""
        run_id = execution.run.id
        token, metadata = chunk
        suffix = "".join(f"|{part}" for part in namespace)
        if named is None or "messages-tuple" in named:
            await self.emit(
                run_id, f"messages{suffix}", [to_jsonable(token), message_metadata(metadata)]
            )
        if named is None or "messages" not in named or not isinstance(token, BaseMessage):
            return
        key = str(token.id or "")
        seen = execution.messages.get(key)
        if seen is None:
            execution.messages[key] = token
            await self.emit(
                run_id,
                "messages/metadata",
                {key: {"metadata": message_metadata(metadata)}},
            )
        elif isinstance(seen, BaseMessageChunk) and isinstance(token, BaseMessageChunk):
            execution.messages[key] = seen + token
        else:
            execution.messages[key] = token
        current = execution.messages[key]
        if isinstance(token, BaseMessageChunk):
            await self.emit(
                run_id,
                "messages/partial",
                [to_jsonable(message_chunk_to_message(current))],
            )
        else:
            await self.emit(run_id, "messages/complete", [to_jsonable(current)])

    # Ends ---------------------------------------------------------------------------------

    def _outcome(
        self,
        execution: Execution,
        status: str,
        usage: dict[str, int],
        tool_calls: list[dict[str, Any]],
        failure: MAIError | None = None,
    ) -> RunOutcome:
        run = execution.run
        offset = usage_of(run.usage) if run.command else {"input_tokens": 0, "output_tokens": 0}
        delta = {key: max(0, usage[key] - offset[key]) for key in usage}
        now = self.clock.now()
        return RunOutcome(
            run_id=run.id,
            conversation_id=run.conversation_id,
            user_id=run.user_id,
            status=status,
            model=execution.model,
            input_tokens=delta["input_tokens"],
            output_tokens=delta["output_tokens"],
            duration_ms=execution.elapsed_ms(),
            ttft_ms=execution.ttft_ms,
            streamed=run.streamed,
            tool_calls=tool_calls,
            error_code=failure.code if failure else None,
            error=failure.detail if failure else None,
            started_at=now - timedelta(milliseconds=execution.elapsed_ms()),
            finished_at=now,
            graph_id=run.graph_id,
            end_user=end_user_of(run),
            resumed=bool(run.command),
        )

    async def _succeeded(self, execution: Execution) -> None:
        run = execution.run
        state: Mapping[str, Any] = execution.final if isinstance(execution.final, Mapping) else {}
        now = self.clock.now()
        duration_ms = execution.elapsed_ms()
        tool_calls = tool_calls_of(state.get("tool_runs"))
        citations = [to_jsonable(c) for c in state.get("citations") or []]
        support = state.get("citation_support")
        if isinstance(support, int | float):
            record_citation_support(float(support))
        usage = usage_of(state.get("usage"))
        answer = answer_of(state)
        execution.trace.finish(output=answer)
        async with self.resources.sessionmaker() as session:
            runs = RunRepository(session)
            messages = MessageRepository(session)
            message_id = uuid.uuid4()
            result = {
                "conversation_id": str(run.conversation_id),
                "thread_id": str(run.conversation_id),
                "message_id": str(message_id),
                "run_id": str(run.id),
                "graph_id": run.graph_id,
                "status": "completed",
                "answer": answer,
                "tool_calls": tool_calls,
                "citations": citations,
                "citation_support": support,
                "usage": usage,
                "duration_ms": duration_ms,
                "model": execution.model or "",
                "memories": to_jsonable(state.get("memories") or []),
            }
            if run.graph_id != "assistant":
                result["output"] = to_jsonable(dict(state))
            moved = await runs.transition(
                run.id,
                RunStatus.success,
                {
                    "model": execution.model,
                    "finished_at": now,
                    "duration_ms": duration_ms,
                    "usage": usage,
                    "result": result,
                },
                owner=self.registry.worker_id,
            )
            if not moved:
                await session.rollback()
                return
            await messages.add(
                Message(
                    id=message_id,
                    conversation_id=run.conversation_id,
                    position=await messages.next_position(run.conversation_id),
                    role="assistant",
                    content=answer,
                    tool_calls=tool_calls,
                    citations=citations,
                    usage=usage,
                    run_id=run.id,
                    model=execution.model,
                    created_at=now,
                )
            )
            await runs.release_thread(run.conversation_id, run.id, now)
            await session.commit()
        record_run_transition(run.graph_id, RunStatus.success.value)
        trace_id = self.resources.tracing.trace_id_for(str(run.id))
        log.info(
            "agent_run_completed",
            run_id=str(run.id),
            graph=run.graph_id,
            duration_ms=duration_ms,
            tools=len(tool_calls),
            **usage,
            # Named here as well: the tracing callbacks may run this in a context of their own.
            **({"trace_id": trace_id} if trace_id is not None else {}),
        )
        if run.protocol != LANGGRAPH_PROTOCOL:
            # LangGraph clients got the state itself as `values`; MAI's own get the turn.
            await self.emit(run.id, "values", result)
        outcome = self._outcome(execution, "completed", usage, tool_calls)
        memory_usage = usage_of(state.get("memory_usage"))
        if any(memory_usage.values()):
            outcome = dataclasses.replace(outcome, memory_usage=memory_usage)
        await self._finish(run.id, outcome)

    async def _interrupted(self, execution: Execution) -> None:
        run = execution.run
        state: Mapping[str, Any] = execution.final if isinstance(execution.final, Mapping) else {}
        usage = usage_of(state.get("usage"))
        tool_calls = tool_calls_of(state.get("tool_runs"))
        pending = [
            (str(getattr(item, "id", "")), to_jsonable(getattr(item, "value", None)))
            for item in execution.interrupts
        ]
        now = self.clock.now()
        result: dict[str, Any] = {
            "conversation_id": str(run.conversation_id),
            "thread_id": str(run.conversation_id),
            "message_id": None,
            "run_id": str(run.id),
            "graph_id": run.graph_id,
            "status": "awaiting_approval",
            "answer": "",
            "tool_calls": tool_calls,
            "citations": [],
            "usage": usage,
            "duration_ms": execution.elapsed_ms(),
            "model": execution.model or "",
            "interrupts": [{"id": i, "value": v} for i, v in pending],
            "approvals": [],
        }
        async with self.resources.sessionmaker() as session:
            runs = RunRepository(session)
            moved = await runs.transition(
                run.id,
                RunStatus.interrupted,
                {"model": execution.model, "usage": usage, "duration_ms": execution.elapsed_ms()},
                owner=self.registry.worker_id,
            )
            if not moved:
                await session.rollback()
                return
            announcements = []
            for handler in self.registry.interrupt_handlers:
                extra = await handler.record(session, run, pending)
                if extra:
                    result.update(extra)
                    announcements.append((handler, extra))
            await runs.update(run.id, {"result": result})
            await runs.release_thread(run.conversation_id, run.id, now)
            await session.commit()
        record_run_transition(run.graph_id, RunStatus.interrupted.value)
        for handler, extra in announcements:
            try:
                await handler.announce(extra)
            except Exception:
                log.exception("interrupt_not_announced", run_id=str(run.id))
        execution.trace.finish(output={"status": "interrupted", "interrupts": len(pending)})
        log.info("run_interrupted", run_id=str(run.id), interrupts=len(pending))
        event = result.get("interrupt_event") or {
            "__interrupt__": [{"value": v, "id": i} for i, v in pending]
        }
        if run.protocol == LANGGRAPH_PROTOCOL:
            # LangGraph's server announces interrupts in each mode the client streams.
            requested = run.stream_modes or list(DEFAULT_STREAM_MODES)
            for mode in ("values", "updates"):
                if mode in requested:
                    await self.emit(run.id, mode, event)
        else:
            await self.emit(run.id, "updates", event)
        await self._finish(run.id, self._outcome(execution, "awaiting_approval", usage, tool_calls))

    async def _on_exception(self, execution: Execution, exc: Exception) -> None:
        run = execution.run
        mapped = map_llm_error(exc, self.settings.llm_base_url)
        if mapped is not None and run.retry_llm_errors and await self._retry_later(execution):
            return
        # An unreachable LLM also surfaces as a refused connection: only what is not an LLM
        # error is taken for a database outage.
        if mapped is None and is_database_outage(exc):
            # A checkpoint or row write hit a database restart: go on from the last checkpoint
            # once it is back (if even this write fails, the lease runs out and the sweeper
            # hands the run to a worker later).
            try:
                if await self._retry_later(execution, reason="database_unavailable"):
                    return
            except Exception:
                log.warning("run_retry_not_recorded", run_id=str(run.id), exc_info=True)
                return
        if mapped is not None:
            await self._failed(execution, mapped)
            return
        if isinstance(exc, MAIError):
            await self._failed(execution, exc)
            return
        log.exception("run_error", run_id=str(run.id))
        error = AgentTurnFailed(
            f"The agent failed on our side ({type(exc).__name__}); the error was logged with "
            f"run id {run.id}.",
            meta={"run_id": str(run.id)},
        )
        error.detail = f"{error.detail} {exc}"[:2000]
        await self._failed(execution, error)

    async def _retry_later(
        self, execution: Execution, reason: RunRetryReason = "llm_unavailable"
    ) -> bool:
        """Queue the run again with a backoff while the retry window lasts."""
        run = execution.run
        now = self.clock.now()
        window = timedelta(seconds=self.settings.run_retry_window_seconds)
        if now - run.created_at > window:
            return False
        delay = min(30.0, 2.0 ** min(run.attempt, 5))
        async with self.resources.sessionmaker() as session:
            moved = await RunRepository(session).transition(
                run.id,
                RunStatus.pending,
                {"available_at": now + timedelta(seconds=delay), "attempt": run.attempt - 1},
                owner=self.registry.worker_id,
            )
            await session.commit()
        if moved:
            record_run_retry(reason)
            log.warning("run_retry_scheduled", run_id=str(run.id), delay_seconds=delay)
            await self.emit(
                run.id,
                "retry",
                {"error": reason, "retry_in_seconds": delay, "run_id": str(run.id)},
            )
        return moved

    async def _failed(
        self, execution: Execution, error: MAIError, status: RunStatus = RunStatus.error
    ) -> None:
        run = execution.run
        now = self.clock.now()
        duration_ms = execution.elapsed_ms()
        usage = usage_of(execution.usage)
        try:
            async with self.resources.sessionmaker() as session:
                runs = RunRepository(session)
                moved = await runs.transition(
                    run.id,
                    status,
                    {
                        "model": execution.model,
                        "error_code": error.code,
                        "error": error.detail,
                        "error_status": error.status_code,
                        "finished_at": now,
                        "duration_ms": duration_ms,
                    },
                    owner=self.registry.worker_id,
                )
                if not moved:
                    await session.rollback()
                    return
                await runs.release_thread(run.conversation_id, run.id, now)
                await session.commit()
        except Exception:
            # The lease runs out and the sweeper settles the run if this write failed.
            log.exception("run_failure_not_recorded", run_id=str(run.id))
            return
        record_run_transition(run.graph_id, status.value)
        log.warning("run_failed", run_id=str(run.id), status=status.value, error=error.code)
        execution.trace.finish(error=error.code)
        await self.emit(run.id, "error", {"error": error.code, "detail": error.detail})
        await self._finish(
            run.id,
            self._outcome(
                execution,
                "timeout" if status is RunStatus.timeout else "failed",
                usage,
                [],
                error,
            ),
        )

    async def _stopped(self, execution: Execution, action: str | None) -> None:
        """The run's task was cancelled: by a cancel request (`action`) or by a shutdown."""
        run = execution.run
        now = self.clock.now()
        if action is None:
            async with self.resources.sessionmaker() as session:
                moved = await RunRepository(session).transition(
                    run.id,
                    RunStatus.pending,
                    {"attempt": max(run.attempt - 1, 0), "available_at": None},
                    owner=self.registry.worker_id,
                )
                await session.commit()
            if moved:
                record_run_retry("shutdown")
                log.warning("run_requeued", run_id=str(run.id))
                # Readers in this process close; the run goes on in a new segment of its log
                # once a worker resumes it (rejoin with GET .../runs/{id}/stream).
                await self.emit(
                    run.id,
                    "error",
                    {
                        "error": "run_interrupted",
                        "detail": "The service stopped while this run was in progress; it "
                        "continues from its last checkpoint when a worker picks it up again.",
                    },
                )
                await self.emit(run.id, END_EVENT, None)
            return
        try:
            await cancel_run_effects(self.resources, run, action)
        except Exception:
            # The run is cancelled all the same; what it wrote stays, and the log says so.
            log.exception("run_rollback_failed", run_id=str(run.id))
        async with self.resources.sessionmaker() as session:
            runs = RunRepository(session)
            moved = await runs.transition(
                run.id,
                RunStatus.cancelled,
                {
                    "error_code": "run_cancelled",
                    "error": f"Cancelled ({action}).",
                    "error_status": 409,
                    "finished_at": now,
                    "duration_ms": execution.elapsed_ms(),
                    "cancel_action": action,
                },
            )
            await runs.release_thread(run.conversation_id, run.id, now)
            await session.commit()
        if moved:
            record_run_transition(run.graph_id, RunStatus.cancelled.value)
            record_run_cancellation(action)
        execution.trace.finish(error="run_cancelled")
        await self.emit(
            run.id, "error", {"error": "run_cancelled", "detail": f"Cancelled ({action})."}
        )
        await self._finish(
            run.id,
            self._outcome(execution, "cancelled", usage_of(execution.usage), [], RunCancelled()),
        )


async def cancel_run_effects(resources: Resources, run: AgentRun, action: str) -> None:
    """For `rollback`: remove what the run added (its checkpoints and its messages)."""
    if action != "rollback":
        return
    assert resources.checkpointer is not None
    await delete_checkpoints_after(
        resources.checkpointer, str(run.conversation_id), run.base_checkpoint_id
    )
    async with resources.sessionmaker() as session:
        await MessageRepository(session).delete_for_run(run.conversation_id, run.id)
        await session.commit()
