"""Server-sent events: run events relayed with their ids, and the one SSE response shape."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent

from app.core.resources import Resources
from app.core.run_events import LoggedEvent, sse_id


def encode(data: Any) -> str:
    """Compact JSON for an SSE data line."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


async def relay_events(
    events: AsyncIterator[LoggedEvent], run_id: uuid.UUID
) -> AsyncIterator[ServerSentEvent]:
    """A run's logged events as SSE, each with the `id:` a client resumes from."""
    # Leaving early (client gone) only stops the relay; the run goes on.
    async for item in events:
        yield ServerSentEvent(data=encode(item.data), event=item.event, id=sse_id(run_id, item.seq))


def sse_response(
    events: AsyncIterator[ServerSentEvent], resources: Resources
) -> EventSourceResponse:
    """An SSE response with heartbeats and no buffering by proxies."""
    return EventSourceResponse(
        events,
        ping=resources.settings.agent_stream_heartbeat_seconds,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
