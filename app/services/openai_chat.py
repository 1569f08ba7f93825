"""The OpenAI-compatible API's use cases: MAI's graphs offered as models, a chat completion run
as one run on the run engine, and its result or events told in OpenAI's shapes.

A completion with a session (the `X-Session-ID` header or `metadata.conversation_id`) is a turn
of that MAI conversation, created on first use and owned by the caller: only the last user
message is new, the graph keeps the history. Without a session the request's messages are the
whole conversation, run on a temporary thread that is deleted once the run ended (its usage
event stays), so stateless clients work unchanged and leave no conversation behind. A temporary
thread that pauses for an approval is kept: the decision resumes it, and the client goes on
with its id as the session.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from app.core.errors import BadRequest, Conflict, MAIError, NotFound
from app.core.logging import get_logger
from app.core.resources import Resources
from app.core.run_events import END_EVENT
from app.models import AgentRun, Conversation, MultitaskStrategy, RunStatus
from app.repositories.approvals import ApprovalRepository
from app.repositories.conversations import ConversationRepository
from app.services.agent import AgentService
from app.services.conversations import ConversationService
from app.services.runs import RunEngine, RunRequest, title_from

# Session ids that are not a conversation of the caller's name one derived from the user and
# the id, so two users sending the same id never share a conversation.
SESSION_NAMESPACE = uuid.UUID("6f0f7c8e-3f4b-4a52-9b7e-6d1c2a9e0b15")
CHAT_ROLES = ("system", "developer", "user", "assistant")

log = get_logger(__name__)
# Deletions of temporary threads whose stream the client left before the run ended (kept
# referenced until done, so they are not collected mid-way).
_discards: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the request, its content as plain text."""

    role: str
    content: str


@dataclass
class ChatRequest:
    """A chat completion as MAI runs it."""

    model: str
    graph_id: str
    messages: list[ChatMessage]
    session_id: str | None = None
    streamed: bool = False
    llm_params: dict[str, Any] = field(default_factory=dict)
    # OpenAI's `user`: the client's id for its own end user, kept with the run for attribution.
    end_user: str | None = None
    # The answer of the session's last turn, finished after an approval the client never saw
    # (its response was the approval notice): given before this turn's answer.
    earlier: str = ""

    @property
    def last_user_message(self) -> str:
        """The new input of the turn."""
        return self.messages[-1].content

    @property
    def temporary(self) -> bool:
        """Without a session the run's thread only lives as long as the run."""
        return self.session_id is None


def text_of(content: Any, position: int) -> str:
    """A message's content as text: a string, or the text parts of a content list (400 for
    images, audio or files, which the agents do not take)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            raise BadRequest(
                f"messages[{position}]: only text content is supported (got a {kind!r} part).",
                code="unsupported_content",
                meta={"param": f"messages.{position}.content"},
            )
        texts.append(part["text"])
    return "\n".join(texts)


def check_messages(messages: Sequence[ChatMessage]) -> None:
    """400 for a conversation MAI cannot run: no messages, tool messages (the agent runs its
    own tools), or a last message that is not the user's."""
    if not messages:
        raise BadRequest(
            "messages must hold at least one message.",
            code="empty_messages",
            meta={"param": "messages"},
        )
    for position, message in enumerate(messages):
        if message.role not in CHAT_ROLES:
            raise BadRequest(
                f"messages[{position}] has role {message.role!r}: this endpoint runs MAI's "
                "agents with their own tools, so tool results are never sent by the client. "
                f"Use the roles {', '.join(CHAT_ROLES)}.",
                code="unsupported_role",
                meta={"param": f"messages.{position}.role"},
            )
    last = messages[-1]
    if last.role != "user":
        raise BadRequest(
            f"The last message must be the user's (it is {last.role!r}): the agent answers a "
            "user message.",
            code="last_message_not_user",
            meta={"param": "messages"},
        )
    if not last.content.strip():
        raise BadRequest(
            "The last user message is empty.",
            code="empty_message",
            meta={"param": "messages"},
        )


class OpenAIChatService:
    """Models and chat completions; stateless, one per request is fine."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.engine = RunEngine(resources)

    # Models -------------------------------------------------------------------------------

    def _offered(self) -> list[str]:
        assert self.resources.graphs is not None, "the run engine is not started"
        served = set(self.resources.graphs.ids())
        return [graph_id for graph_id in self.settings.openai_graphs if graph_id in served]

    def model_id(self, graph_id: str) -> str:
        """The model id a graph is offered as."""
        return f"{self.settings.openai_model_prefix}{graph_id}"

    def model(self, graph_id: str) -> dict[str, Any]:
        """A graph in OpenAI's model shape."""
        created = int(self.resources.clock.now().timestamp())
        return {
            "id": self.model_id(graph_id),
            "object": "model",
            "created": created,
            "owned_by": "mai",
        }

    def models(self) -> list[dict[str, Any]]:
        """One model per offered graph."""
        return [self.model(g) for g in self._offered()]

    def graph_for(self, model: str) -> str:
        """The graph a model id names (its offered id or the bare graph id); 404
        `model_not_found` otherwise."""
        for graph_id in self._offered():
            if model in (self.model_id(graph_id), graph_id):
                return graph_id
        offered = ", ".join(self.model_id(g) for g in self._offered()) or "none"
        raise NotFound(
            f"The model {model!r} does not exist on this server; use one of: {offered}.",
            code="model_not_found",
            meta={"param": "model"},
        )

    # Starting -----------------------------------------------------------------------------

    async def start(self, user_id: uuid.UUID, request: ChatRequest) -> AgentRun:
        """Queue the completion's run: a turn of the session's conversation, or the request's
        whole conversation on a new thread. 404 for another user's conversation, 409 while the
        session runs a turn or waits on an approval."""
        check_messages(request.messages)
        context = {"llm_params": request.llm_params} if request.llm_params else None
        config = {"metadata": {"end_user": request.end_user}} if request.end_user else None
        thread_id: uuid.UUID | None = None
        if request.session_id is not None:
            thread_id = await self._session_thread(user_id, request)
            payload: Any = {"messages": [{"role": "user", "content": request.last_user_message}]}
        else:
            payload = {
                "messages": [
                    {"role": "system" if m.role == "developer" else m.role, "content": m.content}
                    for m in request.messages
                ]
            }
        async with self.resources.sessionmaker() as session:
            if thread_id is not None:
                await self._refuse_if_waiting(session, thread_id)
                request.earlier = await self._answer_after_approval(session, thread_id)
            run = await self.engine.create(
                session,
                RunRequest(
                    user_id=user_id,
                    graph_id=request.graph_id,
                    thread_id=thread_id,
                    message=request.last_user_message,
                    input=payload,
                    multitask_strategy=MultitaskStrategy.reject,
                    streamed=request.streamed,
                    config=config,
                    context=context,
                    title=title_from(request.last_user_message),
                ),
            )
            await session.commit()
        await self.engine.queued(run)
        return run

    async def _session_thread(self, user_id: uuid.UUID, request: ChatRequest) -> uuid.UUID:
        """The conversation a session id names: the caller's conversation with that id, or one
        derived from (caller, session id), created on first use."""
        session_id = request.session_id
        assert session_id is not None
        try:
            named: uuid.UUID | None = uuid.UUID(session_id)
        except ValueError:
            named = None
        async with self.resources.sessionmaker() as session:
            if named is not None:
                existing = await session.get(Conversation, named)
                if existing is not None:
                    if existing.user_id != user_id:
                        raise NotFound(
                            f"No conversation with id {session_id}.",
                            code="conversation_not_found",
                        )
                    return named
            thread_id = uuid.uuid5(SESSION_NAMESPACE, f"{user_id}:{session_id}")
            if await ConversationRepository(session).get_for_user(thread_id, user_id) is not None:
                return thread_id
            now = self.resources.clock.now()
            try:
                await ConversationRepository(session).add(
                    Conversation(
                        id=thread_id,
                        user_id=user_id,
                        title=title_from(request.last_user_message),
                        graph_id=request.graph_id,
                        last_activity_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await session.commit()
            except IntegrityError:
                # A concurrent first request of the same session created it.
                await session.rollback()
        return thread_id

    async def _refuse_if_waiting(self, session: Any, thread_id: uuid.UUID) -> None:
        waiting = await ApprovalRepository(session).pending_for_conversation(thread_id)
        undecided = [a for a in waiting if a.status == "pending"]
        if not waiting:
            return
        raise Conflict(
            (
                "This session is waiting on "
                + ", ".join(f"approval {a.id} ({a.tool or a.kind})" for a in undecided)
                + "; approve or reject it (POST /api/v1/approvals/{id}/approve or /reject) "
                "before sending the next message."
            )
            if undecided
            else "This session's approved calls are resuming; send the next message shortly.",
            code="approval_pending",
            meta={"conversation_id": str(thread_id)},
        )

    async def _answer_after_approval(self, session: Any, thread_id: uuid.UUID) -> str:
        """The answer that ends the thread when it came from a run resumed after an approval
        (the client's last response was the approval notice, not this answer)."""
        from app.repositories.conversations import MessageRepository
        from app.repositories.runs import RunRepository

        last = await MessageRepository(session).last(thread_id)
        if last is None or last.role != "assistant" or last.run_id is None:
            return ""
        run = await RunRepository(session).get(last.run_id)
        if run is None or not run.command or not run.result:
            return ""
        answer = content_of(run.result, "")
        return f"After your approval: {answer}\n\n" if answer else ""

    # Results ------------------------------------------------------------------------------

    async def completion(
        self, run: AgentRun, request: ChatRequest, base_url: str
    ) -> dict[str, Any]:
        """Wait for the run; its answer as a `chat.completion` (or its error raised)."""
        try:
            done = await self.engine.wait(run)
        except BaseException:
            self.settle_later(run, request)
            raise
        try:
            result = self._result_of(done)
        finally:
            await self.settle(run, request, done)
        usage = usage_json(result)
        return {
            "id": str(run.id),
            "object": "chat.completion",
            "created": created_of(run),
            "model": request.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": request.earlier
                        + content_of(result, self._base(base_url), request),
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
            "mai": extension_of(result, request),
        }

    async def settle(self, run: AgentRun, request: ChatRequest, done: AgentRun) -> None:
        """Once the run ended: delete a temporary thread, unless it waits on an approval (the
        decision resumes it there). A failure to delete is logged: the answer matters more."""
        if not request.temporary or done.status == RunStatus.interrupted.value:
            return
        try:
            await ConversationService(self.resources, run.user_id).delete(run.conversation_id)
        except MAIError as error:
            log.warning(
                "temporary_thread_kept", conversation_id=str(run.conversation_id), error=error.code
            )

    def settle_later(self, run: AgentRun, request: ChatRequest) -> None:
        """`settle` once the run ends, for a client that left its stream before."""

        async def when_done() -> None:
            await self.settle(run, request, await self.engine.wait(run))

        task = asyncio.create_task(when_done(), name=f"openai-settle-{run.id}")
        _discards.add(task)
        task.add_done_callback(_discards.discard)

    def _result_of(self, done: AgentRun) -> dict[str, Any]:
        if done.status in (RunStatus.success.value, RunStatus.interrupted.value) and done.result:
            return dict(done.result)
        raise self.engine.error_of(done)

    def _base(self, base_url: str) -> str:
        return (self.settings.openai_public_url or base_url).rstrip("/")

    async def opened(self, run: AgentRun, request: ChatRequest) -> AsyncIterator[Any]:
        """The run's events once it started (a run that cannot start raises its error, so the
        client gets an HTTP error instead of a stream holding one)."""
        try:
            return await AgentService(self.resources).opened_stream(run)
        except BaseException:
            self.settle_later(run, request)
            raise

    async def chunks(
        self,
        run: AgentRun,
        request: ChatRequest,
        events: AsyncIterator[Any],
        base_url: str,
        include_usage: bool,
    ) -> AsyncIterator[dict[str, Any]]:
        """The run as `chat.completion.chunk`s: the role, the answer's tokens as they come,
        what the final answer adds (sources, an approval notice), the finish, then the usage
        when asked. A run that fails mid-way raises its error after the tokens sent."""
        created = created_of(run)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            body: dict[str, Any] = {
                "id": str(run.id),
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                body["usage"] = None
            return body

        settled = False
        try:
            yield chunk({"role": "assistant", "content": ""})
            if request.earlier:
                yield chunk({"content": request.earlier})
            sent = ""
            async for item in events:
                if item.event == END_EVENT:
                    break
                text = token_text(item.event, item.data)
                if text:
                    sent += text
                    yield chunk({"content": text})
            done = await self.engine.wait(run)
            try:
                # The run's error, if it failed, is raised for the caller to tell in its shape.
                result = self._result_of(done)
            finally:
                await self.settle(run, request, done)
                settled = True
        finally:
            if not settled:
                self.settle_later(run, request)
        full = content_of(result, self._base(base_url), request)
        rest = full[len(sent) :] if full.startswith(sent) else ("\n\n" + full if sent else full)
        if rest:
            yield chunk({"content": rest})
        final = chunk({}, "stop")
        final["mai"] = extension_of(result, request)
        yield final
        if include_usage:
            yield {**chunk({}), "choices": [], "usage": usage_json(result)}


def created_of(run: AgentRun) -> int:
    """The run's creation as Unix seconds."""
    return int(run.created_at.timestamp()) if run.created_at else 0


def token_text(event: str, data: Any) -> str:
    """The answer text a `messages` event carries (tool-call chunks and quiet calls carry
    none)."""
    if event != "messages" or not isinstance(data, list) or not data:
        return ""
    token = data[0]
    if not isinstance(token, Mapping) or token.get("type") not in ("AIMessageChunk", "ai"):
        return ""
    content = token.get("content")
    return content if isinstance(content, str) else ""


def usage_json(result: Mapping[str, Any]) -> dict[str, int]:
    """The run's token counts in OpenAI's usage shape."""
    usage = result.get("usage") or {}
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def sources_of(citations: Sequence[Mapping[str, Any]]) -> str:
    """A numbered "Sources" list for the answer's citations."""
    if not citations:
        return ""
    lines = []
    for citation in citations:
        page = citation.get("page")
        where = f", p. {page}" if page else ""
        if citation.get("collection"):
            where += f" ({citation['collection']})"
        lines.append(f"[{citation.get('number')}] {citation.get('title') or 'Untitled'}{where}")
    return "\n\nSources:\n" + "\n".join(lines)


def approval_notice(
    approvals: Sequence[Mapping[str, Any]], base_url: str, session_hint: str | None = None
) -> str:
    """What awaits approval and where to decide it (and, for a request without a session,
    the session id that continues its conversation)."""
    lines = ["Before I go on, this needs your approval:"]
    for approval in approvals:
        args = json.dumps(approval.get("args") or {}, ensure_ascii=False, sort_keys=True)
        url = f"{base_url}/api/v1/approvals/{approval.get('id')}"
        what = approval.get("tool") or approval.get("kind")
        lines.append(
            f"- {what} {args}: approval {approval.get('id')}; approve with "
            f"POST {url}/approve or reject with POST {url}/reject."
        )
    if session_hint is None:
        lines.append("Send your next message once it is decided.")
    else:
        lines.append(
            f"Send your next message with the header X-Session-ID: {session_hint} once it is "
            "decided, to get the answer and go on with this conversation."
        )
    return "\n".join(lines)


def session_of(result: Mapping[str, Any], request: ChatRequest) -> str | None:
    """The session that continues the conversation: the request's, or for a temporary thread
    kept for its approval, the thread's id."""
    if request.session_id is not None:
        return request.session_id
    if result.get("status") == "awaiting_approval" and result.get("conversation_id"):
        return str(result["conversation_id"])
    return None


def content_of(result: Mapping[str, Any], base_url: str, request: ChatRequest | None = None) -> str:
    """The assistant message: the answer with its sources, or the approval notice."""
    if result.get("status") == "awaiting_approval":
        hint = session_of(result, request) if request is not None and request.temporary else None
        return approval_notice(result.get("approvals") or [], base_url, hint)
    return str(result.get("answer") or "") + sources_of(result.get("citations") or [])


def extension_of(result: Mapping[str, Any], request: ChatRequest) -> dict[str, Any]:
    """The `mai` extension field: the run, conversation (`temporary` when it was deleted after
    the run), session, end user, tools, citations and approvals."""
    session_id = session_of(result, request)
    return {
        "run_id": result.get("run_id"),
        "conversation_id": result.get("conversation_id"),
        "temporary": session_id is None,
        "session_id": session_id,
        "user": request.end_user,
        "status": result.get("status"),
        "tool_calls": result.get("tool_calls") or [],
        "citations": result.get("citations") or [],
        "approvals": result.get("approvals") or [],
    }
