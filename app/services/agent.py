"""Agent turns (`/api/v1/agent`): a user message becomes a run on the run engine.

A turn is one run of a graph (the assistant by default) on the conversation's thread. Starting
it stores the user message and queues the run in one transaction; a worker executes it, so a
client that disconnects does not lose it, and any process can relay or join its events. The
outcome (assistant message, run status, usage) is stored when the run ends, so history reads
never touch checkpoints.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from app.core.errors import Conflict
from app.core.logging import get_logger
from app.core.resources import Resources
from app.core.run_events import LoggedEvent
from app.models import AgentRun, MultitaskStrategy, RunStatus
from app.repositories.approvals import ApprovalRepository
from app.services.runs import RunEngine, RunRequest, check_stream_modes, title_from, to_jsonable

log = get_logger(__name__)

__all__ = ["AgentService", "title_from", "to_jsonable"]


class AgentService:
    """Turn use cases on the run engine; stateless, one per request is fine."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.engine = RunEngine(resources)

    async def start_turn(
        self,
        user_id: uuid.UUID,
        message: str,
        conversation_id: uuid.UUID | None = None,
        *,
        streamed: bool = False,
        graph_id: str = "assistant",
        multitask_strategy: MultitaskStrategy = MultitaskStrategy.reject,
        stream_modes: Sequence[str] | None = None,
    ) -> AgentRun:
        """Store the user message and queue the run (one transaction).

        404 for a conversation that is not the user's or an unknown graph; 409
        `approval_pending` while the conversation waits on approvals, `thread_busy` while
        another run holds it (under `reject`); 503 `queue_full`.
        """
        modes = check_stream_modes(stream_modes)
        async with self.resources.sessionmaker() as session:
            if conversation_id is not None:
                await self._refuse_if_waiting(session, conversation_id, user_id)
            run = await self.engine.create(
                session,
                RunRequest(
                    user_id=user_id,
                    graph_id=graph_id,
                    thread_id=conversation_id,
                    message=message,
                    input={"messages": [{"role": "user", "content": message}]},
                    multitask_strategy=multitask_strategy,
                    stream_modes=modes,
                    streamed=streamed,
                ),
            )
            await session.commit()
        await self.engine.queued(run)
        return run

    async def _refuse_if_waiting(
        self, session: Any, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> None:
        from app.repositories.conversations import ConversationRepository

        if await ConversationRepository(session).get_for_user(conversation_id, user_id) is None:
            return  # the engine answers 404
        waiting = await ApprovalRepository(session).pending_for_conversation(conversation_id)
        if not waiting:
            return
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
                "This conversation's approved calls have not resumed yet; they are retried "
                "shortly. Send the next message once they have."
            ),
            code="approval_pending",
            meta={
                "conversation_id": str(conversation_id),
                "approval_ids": [str(a.id) for a in waiting],
            },
        )

    async def result_of(self, run: AgentRun) -> dict[str, Any]:
        """Wait for the run to end; its result (completed or awaiting approval) as TurnOut
        JSON, or its error raised (with the conversation id in `meta`)."""
        done = await self.engine.wait(run)
        if done.status in (RunStatus.success.value, RunStatus.interrupted.value) and done.result:
            return dict(done.result)
        raise self.engine.error_of(done)

    def events(self, run: AgentRun, after: int = 0) -> AsyncIterator[LoggedEvent]:
        """The run's events from `after`, then live ones until it ends."""
        return self.engine.follow(run, after)

    async def opened_stream(
        self, run: AgentRun, wait_seconds: float = 5.0
    ) -> AsyncIterator[LoggedEvent]:
        """The run's events for a new stream, once the run has started: a run that fails
        before it starts (the model unreachable) raises its error instead, so the client gets
        an HTTP error rather than a stream holding only an error."""
        events = self.engine.follow(run)
        try:
            first = await asyncio.wait_for(anext(aiter(events)), timeout=wait_seconds)
        except TimeoutError:
            # Still queued: stream it from the start once it runs.
            return self.engine.follow(run)
        except StopAsyncIteration:
            return self.engine.follow(run)
        if first.event == "error":
            raise self.engine.error_of(await self.engine.wait(run))
        return _chain(first, events)


async def _chain(
    first: LoggedEvent, rest: AsyncIterator[LoggedEvent]
) -> AsyncIterator[LoggedEvent]:
    yield first
    async for item in rest:
        yield item
