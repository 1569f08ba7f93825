"""Live notifications: an in-process pub/sub, shared across processes through Redis when set.

Without Redis, `publish` hands the event to this process's subscribers. With Redis, it goes to
a Redis channel and every process (this one included) relays what it receives to its own
subscribers, so a UI connected to any process sees events from all of them. A Redis failure
falls back to local delivery and is logged; it never fails the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from app.core.logging import get_logger

log = get_logger(__name__)

Event = dict[str, Any]
Filter = Callable[[Event], bool]
QUEUE_SIZE = 1000


class Broker:
    """Fan-out of JSON events to subscribers, each with its own filter and bounded queue."""

    def __init__(self, redis: Redis | None = None, channel: str = "mai:events") -> None:
        self.redis = redis
        self.channel = channel
        self._subscribers: dict[int, tuple[asyncio.Queue[Event], Filter]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Start relaying the Redis channel (no-op without Redis)."""
        if self.redis is None or self._listener is not None:
            return
        self._listener = asyncio.create_task(self._listen(), name=f"broker-{self.channel}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def close(self) -> None:
        """Stop relaying."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None

    async def publish(self, event: Event) -> None:
        """Send an event to every subscriber of every process."""
        if self.redis is not None and self._listener is not None and not self._listener.done():
            try:
                await self.redis.publish(self.channel, json.dumps(event, default=str))
                return
            except Exception as error:
                log.warning("broker_publish_failed", channel=self.channel, error=str(error))
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
        for queue, accepts in list(self._subscribers.values()):
            if not accepts(event):
                continue
            if queue.full():
                # A stuck reader loses its oldest events rather than blocking everyone.
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, accepts: Filter) -> AsyncIterator[asyncio.Queue[Event]]:
        """A queue receiving the events `accepts` lets through, while the context is open."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=QUEUE_SIZE)
        key = id(queue)
        self._subscribers[key] = (queue, accepts)
        try:
            yield queue
        finally:
            self._subscribers.pop(key, None)

    @property
    def subscribers(self) -> int:
        """How many subscribers this process has."""
        return len(self._subscribers)

    async def _listen(self) -> None:
        assert self.redis is not None
        delay = 0.5
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self._ready.set()
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        event = json.loads(message["data"])
                    except (TypeError, ValueError):
                        continue
                    if isinstance(event, dict):
                        self._deliver(event)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("broker_listen_failed", channel=self.channel, error=str(error))
                self._ready.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
