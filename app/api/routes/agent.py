"""/agent: run turns (JSON or SSE) and manage the caller's conversations."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, status
from sse_starlette import EventSourceResponse

from app.api.deps import CallerDep, CurrentUser, PageDep, ResourcesDep, SessionDep, TokenBudgetCheck
from app.api.schemas.agent import (
    ConversationDetailOut,
    ConversationOut,
    ConversationUpdateIn,
    MessageOut,
    QueryIn,
    RunOut,
    TurnOut,
)
from app.api.schemas.common import PageOut
from app.api.schemas.feedback import MessageFeedbackOut
from app.api.sse import relay_events, sse_response
from app.api.streams import live_stream
from app.models import Conversation, Message, MultitaskStrategy
from app.repositories.usage import ConversationSums
from app.services.agent import AgentService
from app.services.conversations import ConversationService
from app.services.feedback import feedback_on_messages
from app.services.runs import RunEngine

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])


def get_agent_service(resources: ResourcesDep) -> AgentService:
    """Turn use cases."""
    return AgentService(resources)


def get_conversation_service(resources: ResourcesDep, user: CurrentUser) -> ConversationService:
    """The caller's conversations."""
    return ConversationService(resources, user.id)


AgentServiceDep = Annotated[AgentService, Depends(get_agent_service)]
ConversationServiceDep = Annotated[ConversationService, Depends(get_conversation_service)]


async def _release_connection(session: SessionDep, _: CurrentUser) -> None:
    """Give the request's database connection back once the caller is authenticated.

    A turn lasts as long as the model takes; holding a pooled connection for all of it would let
    a few slow turns exhaust the pool (the turn writes through short sessions of its own).
    """
    await session.close()


ReleaseConnection = Depends(_release_connection)


@router.post("/query", dependencies=[TokenBudgetCheck, ReleaseConnection])
async def query(body: QueryIn, user: CurrentUser, agent: AgentServiceDep) -> TurnOut:
    """Run one turn to the end and answer with the result.

    The turn runs on in the background if the client goes away, and is stored when it ends.
    A turn that pauses for approval answers `status: "awaiting_approval"` with its approvals;
    a conversation waiting for approval takes no new message (409 `approval_pending`).
    """
    run = await agent.start_turn(
        user.id,
        body.message,
        body.conversation_id,
        graph_id=body.graph_id,
        multitask_strategy=MultitaskStrategy(body.multitask_strategy),
    )
    return TurnOut.model_validate(await agent.result_of(run))


@router.post(
    "/stream",
    dependencies=[TokenBudgetCheck, ReleaseConnection],
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE events"}},
)
async def stream(
    request: Request,
    body: QueryIn,
    caller: CallerDep,
    agent: AgentServiceDep,
    resources: ResourcesDep,
) -> EventSourceResponse:
    """Run one turn and stream it as SSE in the LangGraph server wire format.

    Events: `metadata` {run_id, conversation_id}; `messages` [message_chunk, metadata] per
    token; `updates` {node: output} per node; `values` (the turn result) or `error`
    {error, detail}; then `end`. Every event has an `id:` to rejoin from
    (`GET /agent/runs/{run_id}/stream` with `Last-Event-ID`). Comment lines are heartbeats.
    """
    user = caller.user
    run = await agent.start_turn(
        user.id,
        body.message,
        body.conversation_id,
        streamed=True,
        graph_id=body.graph_id,
        multitask_strategy=MultitaskStrategy(body.multitask_strategy),
        stream_modes=body.stream_modes,
    )
    events = await agent.opened_stream(run)
    # Authorisation is re-checked while the stream lasts (logout, deactivation, expiry).
    return sse_response(live_stream(request, caller, relay_events(events, run.id)), resources)


def get_run_engine(resources: ResourcesDep) -> RunEngine:
    """Run control use cases."""
    return RunEngine(resources)


RunEngineDep = Annotated[RunEngine, Depends(get_run_engine)]


@router.get("/runs/{run_id}", dependencies=[ReleaseConnection])
async def read_run(run_id: uuid.UUID, user: CurrentUser, engine: RunEngineDep) -> RunOut:
    """A run: status, attempt, timings, error, and its place in the queue while pending."""
    run = await engine.get(run_id, None if user.is_admin else user.id)
    return RunOut.model_validate(await engine.describe(run))


@router.post("/runs/{run_id}/cancel", dependencies=[ReleaseConnection])
async def cancel_run(
    run_id: uuid.UUID,
    user: CurrentUser,
    engine: RunEngineDep,
    action: Annotated[Literal["interrupt", "rollback"], Query()] = "interrupt",
    wait: Annotated[bool, Query(description="Answer once the run has stopped")] = True,
) -> RunOut:
    """Cancel a pending, running or interrupted run (409 once it ended). `interrupt` keeps
    the checkpoints it wrote; `rollback` also removes them and its messages."""
    run = await engine.get(run_id, None if user.is_admin else user.id)
    stopped = await engine.cancel(run, action)
    if wait and stopped.status == "running":
        stopped = await engine.wait(stopped)
    return RunOut.model_validate(await engine.describe(stopped))


@router.get(
    "/runs/{run_id}/stream",
    dependencies=[ReleaseConnection],
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE events"}},
)
async def join_run(
    request: Request,
    run_id: uuid.UUID,
    caller: CallerDep,
    engine: RunEngineDep,
    resources: ResourcesDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Rejoin a run's stream: every event after `Last-Event-ID` (all of them without it),
    then the live ones until the run ends. 400 for an id that is not from this run."""
    user = caller.user
    run = await engine.get(run_id, None if user.is_admin else user.id)
    after = engine.start_after(run, last_event_id)
    events = relay_events(engine.follow(run, after), run.id)
    return sse_response(live_stream(request, caller, events), resources)


@router.get("/conversations/{conversation_id}/runs", dependencies=[ReleaseConnection])
async def list_runs(
    conversation_id: uuid.UUID, user: CurrentUser, engine: RunEngineDep, page: PageDep
) -> list[RunOut]:
    """A conversation's runs, newest first."""
    runs = await engine.for_thread(conversation_id, user.id, limit=page.limit, offset=page.offset)
    return [RunOut.model_validate(await engine.describe(run)) for run in runs]


def _conversation_out(
    conversation: Conversation, message_count: int, usage: ConversationSums | None
) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "last_activity_at": conversation.last_activity_at,
        "message_count": message_count,
        "running": conversation.active_run_id is not None,
        "usage": dataclasses.asdict(usage or ConversationSums()),
    }


@router.get("/conversations")
async def list_conversations(
    conversations: ConversationServiceDep, page: PageDep
) -> PageOut[ConversationOut]:
    """Your conversations, most recently active first."""
    items, total = await conversations.list(limit=page.limit, offset=page.offset)
    usage = await conversations.usage([c.id for c, _ in items])
    return PageOut[ConversationOut](
        items=[
            ConversationOut.model_validate(_conversation_out(c, n, usage.get(c.id)))
            for c, n in items
        ],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


async def _detail(
    conversation: Conversation, messages: Sequence[Message], conversations: ConversationService
) -> ConversationDetailOut:
    usage = (await conversations.usage([conversation.id])).get(conversation.id)
    return ConversationDetailOut.model_validate(
        _conversation_out(conversation, len(messages), usage)
        | {"messages": [MessageOut.model_validate(m) for m in messages]}
    )


async def _with_feedback(
    detail: ConversationDetailOut, conversations: ConversationService
) -> ConversationDetailOut:
    """Show the caller's feedback on each message they rated."""
    rated = await feedback_on_messages(
        conversations.resources, conversations.user_id, [m.id for m in detail.messages]
    )
    for message in detail.messages:
        if message.id in rated:
            message.feedback = MessageFeedbackOut.model_validate(rated[message.id])
    return detail


@router.get("/conversations/{conversation_id}")
async def read_conversation(
    conversation_id: uuid.UUID, conversations: ConversationServiceDep
) -> ConversationDetailOut:
    """One conversation with its messages in order."""
    conversation, messages = await conversations.get(conversation_id)
    return await _with_feedback(await _detail(conversation, messages, conversations), conversations)


@router.patch("/conversations/{conversation_id}")
async def update_conversation(
    conversation_id: uuid.UUID, body: ConversationUpdateIn, conversations: ConversationServiceDep
) -> ConversationDetailOut:
    """Rename a conversation."""
    await conversations.rename(conversation_id, body.title)
    conversation, messages = await conversations.get(conversation_id)
    return await _with_feedback(await _detail(conversation, messages, conversations), conversations)


@router.delete("/conversations/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_conversation(
    conversation_id: uuid.UUID, conversations: ConversationServiceDep
) -> None:
    """Delete a conversation, its messages and its checkpoints (409 while a turn runs)."""
    await conversations.delete(conversation_id)
