"""Long-lived SSE streams that stay authorised, and a per-user cap on how many are open.

`live_stream` wraps any SSE event iterator of a route. It takes a slot for the caller (429
`too_many_streams` past MAI_MAX_STREAMS_PER_USER) and, before every event and at least every
MAI_STREAM_AUTH_RECHECK_SECONDS, re-checks the caller as a new request would be: token not
expired or logged out, session not revoked, account still there and active, and the role the
stream was opened with unchanged (a stream filtered for an admin must not outlive the admin
role). When the check fails the stream ends with one `error` event in MAI's error shape.

Usage in a route, after the caller is known::

    return EventSourceResponse(live_stream(request, caller, events()))
"""

from __future__ import annotations

import asyncio
import json
import uuid
import weakref
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator

from fastapi import Request
from sse_starlette import ServerSentEvent

from app.api.deps import Caller
from app.api.errors import error_body
from app.core.errors import Forbidden, MAIError, TooManyRequests
from app.core.logging import get_logger
from app.core.resources import Resources
from app.services.auth import AuthService

log = get_logger(__name__)


class StreamSlots:
    """Open streams per user in this process."""

    def __init__(self) -> None:
        self._open: Counter[uuid.UUID] = Counter()

    def open_for(self, user_id: uuid.UUID) -> int:
        """How many streams this user has open here."""
        return self._open[user_id]

    def acquire(self, user_id: uuid.UUID, limit: int) -> None:
        """Take a slot, or 429 when the user already holds `limit` (0: no cap)."""
        if limit > 0 and self._open[user_id] >= limit:
            raise TooManyRequests(
                f"You already have {limit} live streams open (MAI_MAX_STREAMS_PER_USER); "
                "close one and retry.",
                code="too_many_streams",
                headers={"Retry-After": "5"},
                meta={"limit": limit},
            )
        self._open[user_id] += 1

    def release(self, user_id: uuid.UUID) -> None:
        """Give a slot back."""
        self._open[user_id] -= 1
        if self._open[user_id] <= 0:
            del self._open[user_id]


def stream_slots(request: Request) -> StreamSlots:
    """The app instance's stream slots (made on first use)."""
    slots = getattr(request.app.state, "stream_slots", None)
    if slots is None:
        slots = request.app.state.stream_slots = StreamSlots()
    return slots


async def check_caller(resources: Resources, caller: Caller) -> None:
    """Re-check a caller now, as a new request would be; raises the MAIError that applies."""
    async with resources.sessionmaker() as session:
        auth = AuthService(session, resources.settings, resources.store, resources.clock)
        user = await auth.recheck(caller.claims)
    if user.role != caller.user.role:
        raise Forbidden(
            "Your role changed; open the stream again.",
            code="role_changed",
        )


def _closing_event(error: MAIError) -> ServerSentEvent:
    return ServerSentEvent(
        data=json.dumps(error_body(error.code, error.detail, None)), event="error"
    )


def live_stream(
    request: Request, caller: Caller, events: AsyncIterator[ServerSentEvent]
) -> AsyncIterator[ServerSentEvent]:
    """Wrap an SSE event iterator so it stays authorised and counts against the user's cap.

    Raises 429 at once (before any response starts) when the user is at the cap.
    """
    resources: Resources = request.app.state.resources
    settings = resources.settings
    slots = stream_slots(request)
    user_id = caller.user.id
    slots.acquire(user_id, settings.max_streams_per_user)
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            slots.release(user_id)

    async def guarded() -> AsyncGenerator[ServerSentEvent, None]:
        loop = asyncio.get_running_loop()
        interval = settings.stream_auth_recheck_seconds
        iterator = aiter(events)
        pending: asyncio.Task[ServerSentEvent] | None = None
        try:
            deadline = loop.time() + interval
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(iterator))
                done, _ = await asyncio.wait({pending}, timeout=max(0.0, deadline - loop.time()))
                try:
                    await check_caller(resources, caller)
                except MAIError as error:
                    log.info("stream_closed_unauthorised", reason=error.code)
                    yield _closing_event(error)
                    return
                deadline = loop.time() + interval
                if not done:
                    continue
                finished, pending = pending, None
                try:
                    event = finished.result()
                except StopAsyncIteration:
                    return
                yield event
        finally:
            # First what needs no await: a cancelled stream may not get to run another one.
            release()
            if pending is not None:
                # The wrapped iterator is mid-step in that task: cancelling it closes it there.
                pending.cancel()
            else:
                close = getattr(iterator, "aclose", None)
                if close is not None:
                    await close()

    stream = guarded()
    # A response that is never iterated (the client left first) still gives its slot back.
    weakref.finalize(stream, release)
    return stream
