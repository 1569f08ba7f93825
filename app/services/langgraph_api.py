"""The LangGraph Server API's use cases: assistants, threads, thread state and runs, on MAI's
conversations (a thread is a conversation, with the same id) and the run engine.

Shapes follow langgraph-sdk's types (`Assistant`, `Thread`, `ThreadState`, `Run`), so the
official clients (Python and JS SDK, Agent Chat UI, Studio) work against MAI unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.graphs import GraphEntry
from app.core.resources import Resources
from app.models import (
    AgentRun,
    Approval,
    Conversation,
    Message,
    MultitaskStrategy,
    RunStatus,
    User,
)
from app.repositories.conversations import ConversationRepository, MessageRepository
from app.repositories.runs import RunRepository
from app.services.approvals.service import ApprovalService, DecisionKind
from app.services.conversations import ConversationService
from app.services.langgraph_assistants import AssistantService, merge_config, system_assistant_id
from app.services.runs import STREAM_MODES, RunEngine, RunRequest, title_from, to_jsonable
from app.services.runs.checkpoints import copy_checkpoints
from app.services.runs.executor import LANGGRAPH_PROTOCOL

# LangGraph's stream modes and what the run engine streams for each; LangGraph names the
# `messages-tuple` events `messages`.
LANGGRAPH_STREAM_MODES = {
    "values": "values",
    "updates": "updates",
    "messages-tuple": "messages",
    "messages": "messages",
    "custom": "custom",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
    "events": "events",
}
# The engine's run statuses as LangGraph names them (a cancelled run is `interrupted` there).
RUN_STATUS = {RunStatus.cancelled.value: "interrupted"}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    return all(metadata.get(key) == value for key, value in (wanted or {}).items())


def stream_modes_of(requested: str | Sequence[str] | None) -> list[str]:
    """The engine's stream modes for LangGraph's `stream_mode` (default `values`); 422 for
    unknown modes."""
    modes = [requested] if isinstance(requested, str) else list(requested or ["values"])
    unknown = [m for m in modes if m not in LANGGRAPH_STREAM_MODES]
    if unknown:
        raise Unprocessable(
            f"Unknown stream_mode {', '.join(map(repr, unknown))}; use any of "
            f"{', '.join(sorted(LANGGRAPH_STREAM_MODES))}.",
            code="invalid_stream_mode",
        )
    mapped = [LANGGRAPH_STREAM_MODES[m] for m in modes]
    assert all(m in STREAM_MODES for m in mapped)
    return list(dict.fromkeys(mapped))


def last_user_text(value: Any) -> str | None:
    """The text of the last user message of a `{"messages": [...]}` input, to store it on the
    conversation like a message sent through /api/v1/agent."""
    if not isinstance(value, Mapping):
        return None
    messages = value.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if isinstance(last, str):
        return last
    if isinstance(last, Mapping) and last.get("role", last.get("type")) in ("user", "human"):
        content = last.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(
                str(part.get("text", "")) for part in content if isinstance(part, Mapping)
            )
    return None


# LangChain's human-in-the-loop decision types as MAI's approval decisions.
HITL_DECISIONS: dict[str, DecisionKind] = {
    "approve": "approved",
    "reject": "rejected",
    "edit": "modified",
    "approved": "approved",
    "rejected": "rejected",
    "modified": "modified",
}


def approval_decisions(
    resume: Any, waiting: Sequence[Approval]
) -> list[tuple[Approval, DecisionKind, dict[str, Any] | None, str | None]]:
    """The decisions a `command.resume` makes on the thread's pending approvals.

    Takes LangChain's human-in-the-loop shape (`{"decisions": [{"type": "approve" | "edit" |
    "reject", ...}]}`, one per pending call in order) or MAI's own (`{approval_id:
    {"decision": ..., "args": ..., "reason": ...}}`); 422 for anything else.
    """
    found: list[tuple[Approval, DecisionKind, dict[str, Any] | None, str | None]] = []
    if len(waiting) == 1 and waiting[0].kind == "plan" and isinstance(resume, Mapping):
        # The planner's own resume shape: {"decision": ..., "plan": ..., "reason": ...}.
        resume = {str(waiting[0].id): resume} if "decision" in resume else resume
    if isinstance(resume, Mapping) and isinstance(resume.get("decisions"), list):
        decisions = resume["decisions"]
        if len(decisions) != len(waiting):
            raise Unprocessable(
                f"The thread waits on {len(waiting)} approval(s); send one decision for each "
                f"(got {len(decisions)}).",
                code="invalid_resume",
            )
        for approval, decision in zip(waiting, decisions, strict=True):
            kind = HITL_DECISIONS.get(str((decision or {}).get("type")))
            if kind is None:
                raise Unprocessable(
                    "Each decision needs type approve, edit or reject.", code="invalid_resume"
                )
            edited = (decision.get("edited_action") or {}).get("args") or decision.get("args")
            found.append((approval, kind, edited, decision.get("message")))
        return found
    if isinstance(resume, Mapping) and all(str(a.id) in resume for a in waiting):
        for approval in waiting:
            decision = resume[str(approval.id)]
            kind = HITL_DECISIONS.get(str((decision or {}).get("decision")))
            if kind is None:
                raise Unprocessable(
                    "Each decision needs decision approved, modified or rejected.",
                    code="invalid_resume",
                )
            edited = decision.get("args", decision.get("plan"))
            found.append((approval, kind, edited, decision.get("reason")))
        return found
    raise Unprocessable(
        "This thread waits on tool approvals: resume with "
        '{"decisions": [{"type": "approve" | "edit" | "reject"}, ...]}, one per pending call.',
        code="invalid_resume",
        meta={"approval_ids": [str(a.id) for a in waiting]},
    )


def run_json(run: AgentRun) -> dict[str, Any]:
    """A run as LangGraph's `Run`."""
    updated = run.finished_at or run.started_at or run.created_at
    return {
        "run_id": str(run.id),
        "thread_id": str(run.conversation_id),
        "assistant_id": (run.kwargs or {}).get("assistant_id") or system_assistant_id(run.graph_id),
        "created_at": _iso(run.created_at),
        "updated_at": _iso(updated),
        "status": RUN_STATUS.get(run.status, run.status),
        "metadata": dict((run.config or {}).get("metadata") or {}),
        "multitask_strategy": run.multitask_strategy,
        "kwargs": {
            key: value for key, value in (run.kwargs or {}).items() if key != "assistant_id"
        },
    }


@dataclass
class RunOptions:
    """What a LangGraph run asks for, as its body names it."""

    assistant_id: str
    input: Any = None
    command: dict[str, Any] | None = None
    stream_mode: str | list[str] | None = None
    stream_subgraphs: bool = False
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    multitask_strategy: str = "reject"
    if_not_exists: str = "reject"
    interrupt_before: str | list[str] | None = None
    interrupt_after: str | list[str] | None = None
    webhook: str | None = None
    after_seconds: float | None = None
    checkpoint_id: str | None = None
    durability: str | None = None


def _node_names(
    entry: GraphEntry, names: str | list[str] | None, field: str
) -> str | list[str] | None:
    """`*` or node names of the graph (422 naming the unknown ones)."""
    if names in (None, [], ""):
        return None
    if names == "*":
        return "*"
    listed = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in listed if n not in entry.graph.nodes]
    if unknown:
        raise Unprocessable(
            f"{field}: graph {entry.graph_id!r} has no node {', '.join(map(repr, unknown))}.",
            code="invalid_interrupt_nodes",
        )
    return listed


class LangGraphService:
    """LangGraph API use cases for one caller; stateless, one per request is fine."""

    def __init__(self, resources: Resources, user: User) -> None:
        self.resources = resources
        self.user = user
        self.user_id = user.id
        self.engine = RunEngine(resources)
        self.assistants = AssistantService(resources, user)

    def _entries(self) -> dict[str, GraphEntry]:
        assert self.resources.graphs is not None, "the graphs are not loaded"
        return self.resources.graphs.entries

    # Threads ----------------------------------------------------------------------------

    async def _owned(
        self, session: AsyncSession, thread_id: uuid.UUID, *, read: bool = False
    ) -> Conversation:
        """The caller's thread; with `read`, an admin gets anyone's. 404 otherwise."""
        conversation: Conversation | None
        if read and self.user.is_admin:
            conversation = await session.get(Conversation, thread_id)
        else:
            conversation = await ConversationRepository(session).get_for_user(
                thread_id, self.user_id
            )
        if conversation is None:
            raise NotFound(f"No thread with id {thread_id}.", code="thread_not_found")
        return conversation

    async def create_thread(
        self, thread_id: uuid.UUID | None, metadata: dict[str, Any] | None, if_exists: str
    ) -> dict[str, Any]:
        """A new thread (an empty conversation); `if_exists` raise (409) or do_nothing."""
        now = self.resources.clock.now()
        async with self.resources.sessionmaker() as session:
            conversations = ConversationRepository(session)
            if thread_id is not None:
                existing = await session.get(Conversation, thread_id)
                if existing is not None:
                    if if_exists == "do_nothing" and existing.user_id == self.user_id:
                        return await self.thread_json(existing)
                    raise Conflict(f"Thread {thread_id} already exists.", code="thread_exists")
            graph_id = str((metadata or {}).get("graph_id") or "assistant")
            conversation = await conversations.add(
                Conversation(
                    id=thread_id or uuid.uuid4(),
                    user_id=self.user_id,
                    title="New conversation",
                    graph_id=graph_id if graph_id in self._entries() else "assistant",
                    thread_metadata=dict(metadata or {}),
                    last_activity_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.commit()
        return await self.thread_json(conversation)

    async def get_thread(self, thread_id: uuid.UUID) -> dict[str, Any]:
        """The caller's thread (404 for another user's; an admin reads anyone's)."""
        async with self.resources.sessionmaker() as session:
            conversation = await self._owned(session, thread_id, read=True)
        return await self.thread_json(conversation)

    async def update_thread(self, thread_id: uuid.UUID, metadata: dict[str, Any]) -> dict[str, Any]:
        """Merge metadata into the thread's."""
        async with self.resources.sessionmaker() as session:
            conversation = await self._owned(session, thread_id)
            conversation.thread_metadata = {**(conversation.thread_metadata or {}), **metadata}
            conversation.updated_at = self.resources.clock.now()
            await session.commit()
        return await self.thread_json(conversation)

    async def delete_thread(self, thread_id: uuid.UUID) -> None:
        """Delete the thread: its conversation, messages, runs and checkpoints."""
        try:
            await ConversationService(self.resources, self.user_id).delete(thread_id)
        except NotFound:
            raise NotFound(f"No thread with id {thread_id}.", code="thread_not_found") from None

    async def search_threads(
        self,
        *,
        ids: Sequence[uuid.UUID] | None,
        metadata: Mapping[str, Any] | None,
        values: Mapping[str, Any] | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        """The caller's threads matching every filter, most recently updated first."""
        async with self.resources.sessionmaker() as session:
            conversations = await ConversationRepository(session).all_for_user(self.user_id, ids)
        found: list[dict[str, Any]] = []
        skipped = 0
        for conversation in conversations:
            thread = await self.thread_json(conversation)
            if not _matches(thread["metadata"], metadata):
                continue
            if status is not None and thread["status"] != status:
                continue
            if values and not _matches(thread["values"] or {}, values):
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(thread)
            if len(found) >= limit:
                break
        return found

    async def thread_status(self, conversation: Conversation) -> str:
        """idle | busy | interrupted | error, from the thread's runs."""
        if conversation.active_run_id is not None:
            return "busy"
        async with self.resources.sessionmaker() as session:
            runs = RunRepository(session)
            if await runs.active_for_thread(conversation.id):
                return "busy"
            latest = await runs.for_thread(conversation.id, limit=1, offset=0)
        if not latest:
            return "idle"
        if latest[0].status == RunStatus.interrupted.value:
            return "interrupted"
        if latest[0].status in (RunStatus.error.value, RunStatus.timeout.value):
            return "error"
        return "idle"

    async def thread_json(self, conversation: Conversation) -> dict[str, Any]:
        """A conversation as LangGraph's `Thread`: metadata, status, values, interrupts."""
        state = await self._snapshot(conversation)
        interrupts: dict[str, list[Any]] = {}
        values: Any = None
        if state is not None:
            values = to_jsonable(state.values) if state.values else None
            for task in state.tasks:
                if task.interrupts:
                    interrupts[task.id] = [self._interrupt(i) for i in task.interrupts]
        metadata = {
            "graph_id": conversation.graph_id,
            "assistant_id": system_assistant_id(conversation.graph_id),
            **(conversation.thread_metadata or {}),
        }
        return {
            "thread_id": str(conversation.id),
            "created_at": _iso(conversation.created_at),
            "updated_at": _iso(conversation.updated_at),
            "metadata": metadata,
            "status": await self.thread_status(conversation),
            "values": values,
            "interrupts": interrupts,
        }

    # State ------------------------------------------------------------------------------

    def _config(self, conversation: Conversation, checkpoint_id: str | None = None) -> Any:
        configurable: dict[str, Any] = {"thread_id": str(conversation.id), "checkpoint_ns": ""}
        if checkpoint_id is not None:
            configurable["checkpoint_id"] = checkpoint_id
        return cast(RunnableConfig, {"configurable": configurable})

    def _graph_of(self, conversation: Conversation) -> GraphEntry:
        entries = self._entries()
        return entries.get(conversation.graph_id) or entries["assistant"]

    async def _snapshot(self, conversation: Conversation, subgraphs: bool = False) -> Any:
        graph = self._graph_of(conversation).graph
        state = await graph.aget_state(self._config(conversation), subgraphs=subgraphs)
        return state if state.created_at is not None else None

    @staticmethod
    def _interrupt(item: Any) -> dict[str, Any]:
        return {"value": to_jsonable(getattr(item, "value", None)), "id": str(item.id)}

    def _checkpoint(self, config: Mapping[str, Any] | None, thread_id: str) -> dict[str, Any]:
        configurable = (config or {}).get("configurable") or {}
        return {
            "thread_id": thread_id,
            "checkpoint_ns": configurable.get("checkpoint_ns", ""),
            "checkpoint_id": configurable.get("checkpoint_id"),
            "checkpoint_map": configurable.get("checkpoint_map"),
        }

    def state_json(self, state: Any, thread_id: str) -> dict[str, Any]:
        """A StateSnapshot as LangGraph's `ThreadState`."""
        if state is None:
            return {
                "values": {},
                "next": [],
                "tasks": [],
                "checkpoint": self._checkpoint(None, thread_id),
                "metadata": {},
                "created_at": None,
                "parent_checkpoint": None,
                "interrupts": [],
            }
        tasks = [
            {
                "id": task.id,
                "name": task.name,
                "path": to_jsonable(list(task.path)),
                "error": str(task.error) if task.error else None,
                "interrupts": [self._interrupt(i) for i in task.interrupts],
                "checkpoint": None,
                "state": self.state_json(task.state, thread_id)
                if task.state is not None and hasattr(task.state, "values")
                else None,
                "result": to_jsonable(task.result),
            }
            for task in state.tasks
        ]
        return {
            "values": to_jsonable(state.values),
            "next": list(state.next),
            "tasks": tasks,
            "checkpoint": self._checkpoint(state.config, thread_id),
            "metadata": to_jsonable(state.metadata or {}),
            "created_at": state.created_at,
            "parent_checkpoint": self._checkpoint(state.parent_config, thread_id)
            if state.parent_config
            else None,
            "interrupts": [self._interrupt(i) for i in getattr(state, "interrupts", ())],
        }

    async def get_state(
        self, thread_id: uuid.UUID, checkpoint_id: str | None = None, subgraphs: bool = False
    ) -> dict[str, Any]:
        """The thread's current state (or at `checkpoint_id`; 404 for an unknown one)."""
        async with self.resources.sessionmaker() as session:
            conversation = await self._owned(session, thread_id, read=True)
        graph = self._graph_of(conversation).graph
        state = await graph.aget_state(
            self._config(conversation, checkpoint_id), subgraphs=subgraphs
        )
        if state.created_at is None:
            if checkpoint_id is not None:
                raise NotFound(
                    f"Thread {thread_id} has no checkpoint {checkpoint_id!r}.",
                    code="checkpoint_not_found",
                )
            return self.state_json(None, str(thread_id))
        return self.state_json(state, str(thread_id))

    async def history(
        self,
        thread_id: uuid.UUID,
        *,
        limit: int,
        before: str | None,
        metadata: dict[str, Any] | None,
    ) -> list[dict[str, Any]]:
        """The thread's past states, newest first."""
        async with self.resources.sessionmaker() as session:
            conversation = await self._owned(session, thread_id, read=True)
        graph = self._graph_of(conversation).graph
        before_config = self._config(conversation, before) if before else None
        return [
            self.state_json(state, str(thread_id))
            async for state in graph.aget_state_history(
                self._config(conversation), limit=limit, before=before_config, filter=metadata
            )
        ]

    # Runs -------------------------------------------------------------------------------

    def run_json(self, run: AgentRun) -> dict[str, Any]:
        """A run as LangGraph's `Run`."""
        return run_json(run)

    async def create_run(
        self, thread_id: uuid.UUID | None, options: RunOptions, *, streamed: bool
    ) -> AgentRun:
        """Queue a run on the thread (a new thread when None) through the run engine, with
        the assistant's config and context under the run's own."""
        if options.command is not None and options.input is not None:
            raise Unprocessable("Send either input or command, not both.", code="input_and_command")
        resolved = await self.assistants.resolve(options.assistant_id)
        entry = resolved.entry
        modes = stream_modes_of(options.stream_mode)
        named = (
            [options.stream_mode]
            if isinstance(options.stream_mode, str)
            else list(options.stream_mode or ["values"])
        )
        pauses = {
            "interrupt_before": _node_names(entry, options.interrupt_before, "interrupt_before"),
            "interrupt_after": _node_names(entry, options.interrupt_after, "interrupt_after"),
        }
        command = options.command
        if thread_id is not None and command is not None and "resume" in command:
            resumed = await self._resume_approvals(thread_id, command["resume"])
            if resumed is not None:
                return resumed
        run_config = merge_config(resolved.config, options.config)
        if options.metadata:
            run_config["metadata"] = {**(run_config.get("metadata") or {}), **options.metadata}
        if options.checkpoint_id is not None:
            await self._check_checkpoint(thread_id, options.checkpoint_id)
            run_config["configurable"] = {
                **(run_config.get("configurable") or {}),
                "checkpoint_id": options.checkpoint_id,
            }
        context = {**resolved.context, **(options.context or {})} or None
        kwargs: dict[str, Any] = {
            "assistant_id": resolved.assistant_id,
            "stream_mode": named,
            **({"stream_subgraphs": True} if options.stream_subgraphs else {}),
            **{key: value for key, value in pauses.items() if value},
            **({"webhook": options.webhook} if options.webhook else {}),
            **({"checkpoint_id": options.checkpoint_id} if options.checkpoint_id else {}),
            **({"durability": options.durability} if options.durability else {}),
        }
        message = last_user_text(options.input) if command is None else None
        now = self.resources.clock.now()
        async with self.resources.sessionmaker() as session:
            if thread_id is not None:
                conversations = ConversationRepository(session)
                existing = await session.get(Conversation, thread_id)
                if existing is None and options.if_not_exists == "create":
                    await conversations.add(
                        Conversation(
                            id=thread_id,
                            user_id=self.user_id,
                            title=title_from(message or entry.graph_id),
                            graph_id=entry.graph_id,
                            thread_metadata={"assistant_id": resolved.assistant_id},
                            last_activity_at=now,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                elif existing is None or existing.user_id != self.user_id:
                    raise NotFound(f"No thread with id {thread_id}.", code="thread_not_found")
                else:
                    existing.graph_id = entry.graph_id
                    existing.thread_metadata = {
                        **(existing.thread_metadata or {}),
                        "assistant_id": resolved.assistant_id,
                    }
                    if existing.title == "New conversation" and message:
                        existing.title = title_from(message)
                    existing.updated_at = now
            try:
                run = await self.engine.create(
                    session,
                    RunRequest(
                        user_id=self.user_id,
                        graph_id=entry.graph_id,
                        thread_id=thread_id,
                        message=message,
                        input=options.input if command is None else None,
                        command=command,
                        multitask_strategy=MultitaskStrategy(options.multitask_strategy),
                        stream_modes=modes,
                        streamed=streamed,
                        config=run_config or None,
                        context=context,
                        protocol=LANGGRAPH_PROTOCOL,
                        kwargs=kwargs,
                        delay_seconds=options.after_seconds,
                    ),
                )
            except NotFound as error:
                if error.code == "conversation_not_found":
                    raise NotFound(
                        f"No thread with id {thread_id}.", code="thread_not_found"
                    ) from None
                raise
            await session.commit()
        await self.engine.queued(run)
        return run

    async def _check_checkpoint(self, thread_id: uuid.UUID | None, checkpoint_id: str) -> None:
        """404 unless the caller's thread has this checkpoint."""
        if thread_id is None:
            raise Unprocessable(
                "checkpoint_id needs a thread: a stateless run starts from nothing.",
                code="checkpoint_without_thread",
            )
        async with self.resources.sessionmaker() as session:
            await self._owned(session, thread_id)
        saver = self.resources.checkpointer
        assert saver is not None
        found = await saver.aget_tuple(
            {
                "configurable": {
                    "thread_id": str(thread_id),
                    "checkpoint_ns": "",
                    "checkpoint_id": checkpoint_id,
                }
            }
        )
        if found is None:
            raise NotFound(
                f"Thread {thread_id} has no checkpoint {checkpoint_id!r}.",
                code="checkpoint_not_found",
            )

    async def _resume_approvals(self, thread_id: uuid.UUID, resume: Any) -> AgentRun | None:
        """A resume of a thread paused on tool approvals decides them on the approval
        resource (decided_by, history, webhook, SSE) like /api/v1/approvals does, and continues
        the paused run. None when the thread waits on no approval."""
        async with self.resources.sessionmaker() as session:
            await self._owned(session, thread_id)
        approvals = ApprovalService(self.resources)
        waiting = [
            a for a in await approvals.pending_for_conversation(thread_id) if a.status == "pending"
        ]
        if not waiting:
            return None
        plan = None
        for approval, kind, args, reason in approval_decisions(resume, waiting):
            result = await approvals.decide(self.user, approval.id, kind, args=args, reason=reason)
            plan = result.plan or plan
        if plan is None:
            raise Conflict(
                "The decisions were recorded, but the paused run could not be resumed.",
                code="resume_not_claimed",
            )
        return await approvals.start_resume(plan)

    async def get_run(
        self, thread_id: uuid.UUID, run_id: uuid.UUID, *, read: bool = False
    ) -> AgentRun:
        """The caller's run on this thread (with `read`, an admin gets anyone's; 404
        otherwise)."""
        try:
            run = await self.engine.get(
                run_id, None if read and self.user.is_admin else self.user_id
            )
        except NotFound:
            run = None
        if run is None or run.conversation_id != thread_id:
            raise NotFound(f"No run {run_id} on thread {thread_id}.", code="run_not_found")
        return run

    async def list_runs(
        self, thread_id: uuid.UUID, *, limit: int, offset: int, status: str | None
    ) -> list[dict[str, Any]]:
        """The thread's runs, newest first (an admin reads anyone's)."""
        async with self.resources.sessionmaker() as session:
            owner = (await self._owned(session, thread_id, read=True)).user_id
        try:
            runs = await self.engine.for_thread(thread_id, owner, limit=limit, offset=offset)
        except NotFound:
            raise NotFound(f"No thread with id {thread_id}.", code="thread_not_found") from None
        found = [self.run_json(run) for run in runs]
        return [r for r in found if status is None or r["status"] == status]

    async def output_of(self, run: AgentRun) -> dict[str, Any]:
        """Wait for the run to end; the thread's values then (with `__interrupt__` when it
        paused), or the run's error raised."""
        done = await self.engine.wait(run)
        if done.status not in (RunStatus.success.value, RunStatus.interrupted.value):
            raise self.engine.error_of(done)
        async with self.resources.sessionmaker() as session:
            conversation = await session.get(Conversation, done.conversation_id)
        if conversation is None:
            return {}
        state = await self._snapshot(conversation)
        if state is None:
            return {}
        values = to_jsonable(state.values)
        output: dict[str, Any] = dict(values) if isinstance(values, dict) else {"values": values}
        pending = [self._interrupt(i) for task in state.tasks for i in task.interrupts]
        if pending:
            output["__interrupt__"] = pending
        return output

    async def delete_run(self, thread_id: uuid.UUID, run_id: uuid.UUID) -> None:
        """Delete a run that is not active (409 while it is)."""
        run = await self.get_run(thread_id, run_id)
        if run.status in (RunStatus.pending.value, RunStatus.running.value):
            raise Conflict(
                f"Run {run_id} is still {run.status}; cancel it first.", code="run_active"
            )
        async with self.resources.sessionmaker() as session:
            await RunRepository(session).delete(run_id)
            await session.commit()

    async def discard_thread(self, thread_id: uuid.UUID) -> None:
        """Delete a stateless run's temporary thread once its run ended."""
        await ConversationService(self.resources, self.user_id).delete(thread_id)

    async def cancel_if_active(self, run: AgentRun) -> None:
        """Cancel the run unless it already ended (a streaming client went away)."""
        try:
            await self.engine.cancel(run, "interrupt")
        except Conflict:
            return

    async def copy_thread(self, thread_id: uuid.UUID) -> dict[str, Any]:
        """A new thread of the caller's with the thread's metadata, messages and every
        checkpoint (so its state and history are the same)."""
        now = self.resources.clock.now()
        async with self.resources.sessionmaker() as session:
            source = await self._owned(session, thread_id, read=True)
            copy = await ConversationRepository(session).add(
                Conversation(
                    id=uuid.uuid4(),
                    user_id=self.user_id,
                    title=source.title,
                    graph_id=source.graph_id,
                    thread_metadata=dict(source.thread_metadata or {}),
                    last_activity_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            messages = MessageRepository(session)
            for message in await messages.list_for_conversation(thread_id):
                await messages.add(
                    Message(
                        conversation_id=copy.id,
                        position=message.position,
                        role=message.role,
                        content=message.content,
                        tool_calls=message.tool_calls,
                        citations=message.citations,
                        usage=message.usage,
                        model=message.model,
                        created_at=message.created_at,
                    )
                )
            assert self.resources.checkpointer is not None
            await copy_checkpoints(self.resources.checkpointer, str(thread_id), str(copy.id))
            await session.commit()
        return await self.thread_json(copy)

    async def update_state(
        self,
        thread_id: uuid.UUID,
        values: Any,
        *,
        as_node: str | None,
        checkpoint_id: str | None,
    ) -> dict[str, Any]:
        """Write `values` to the thread's state as if node `as_node` returned them (from
        `checkpoint_id` when given); 409 while a run is active on it."""
        async with self.resources.sessionmaker() as session:
            conversation = await self._owned(session, thread_id)
        if await self.thread_status(conversation) == "busy":
            raise Conflict(
                "A run is in progress on this thread; update its state once it ended.",
                code="thread_busy",
            )
        entry = self._graph_of(conversation)
        if as_node is not None and as_node not in entry.graph.nodes:
            raise Unprocessable(
                f"as_node: graph {entry.graph_id!r} has no node {as_node!r}.",
                code="invalid_as_node",
            )
        if checkpoint_id is not None:
            await self._check_checkpoint(thread_id, checkpoint_id)
        from langgraph._internal._constants import CONFIG_KEY_RUNTIME
        from langgraph.errors import InvalidUpdateError
        from langgraph.runtime import Runtime

        config = self._config(conversation, checkpoint_id)
        # LangGraph runs the node's routers to find what comes next, without a runtime of
        # its own: routers that read the run's context get the graph's defaults.
        config["configurable"][CONFIG_KEY_RUNTIME] = Runtime(
            context=None, store=self.resources.memory_store
        )
        try:
            written = await entry.graph.aupdate_state(config, values, as_node=as_node)
        except (InvalidUpdateError, ValueError, KeyError, TypeError) as error:
            # LangGraph refuses values its state cannot take, or an ambiguous node.
            raise Unprocessable(str(error), code="invalid_state_update") from None
        async with self.resources.sessionmaker() as session:
            stored = await session.get(Conversation, thread_id)
            if stored is not None:
                stored.updated_at = self.resources.clock.now()
                await session.commit()
        return {"checkpoint": self._checkpoint(written, str(thread_id))}

    async def delete_assistant(self, assistant_id: str, *, delete_threads: bool) -> None:
        """Delete the caller's assistant; with `delete_threads`, also the caller's threads
        whose metadata names it (with their runs and checkpoints)."""
        await self.assistants.delete(assistant_id)
        if not delete_threads:
            return
        async with self.resources.sessionmaker() as session:
            threads = await ConversationRepository(session).all_for_user(self.user_id)
        for thread in threads:
            if (thread.thread_metadata or {}).get("assistant_id") == assistant_id:
                await self.delete_thread(thread.id)
