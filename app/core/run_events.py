"""Per-run event logs: every stream part a run emits, in order, replayable from any point.

A run's events are appended by the worker executing it and read by any API process relaying
it (a stream, a join, a wait). With Redis the log is a Redis stream per run, so a run executed
by one process can be followed from another; without Redis (or while Redis is down) it lives
in this process. Logs are kept for MAI_RUN_EVENTS_TTL_SECONDS after the run ends.

Events are numbered 1, 2, 3… per run; the SSE id a client sees is `<seq>-<run tag>` so that a
`Last-Event-ID` from another run is recognised and refused.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.kv import CircuitBreaker
from app.core.logging import get_logger

log = get_logger(__name__)

END_EVENT = "end"


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One event of a run: its sequence number, SSE event name and JSON data."""

    seq: int
    event: str
    data: Any


def event_tag(run_id: uuid.UUID) -> str:
    """The short run tag in every SSE id of the run."""
    return run_id.hex[:12]


def sse_id(run_id: uuid.UUID, seq: int) -> str:
    """The SSE `id:` of a run's event."""
    return f"{seq}-{event_tag(run_id)}"


class InvalidEventId(ValueError):
    """A Last-Event-ID that does not belong to this run."""


def parse_event_id(run_id: uuid.UUID, value: str | None) -> int:
    """The sequence number a client last saw (0: from the start); raises InvalidEventId for an
    id that is malformed or from another run."""
    if value is None or value.strip() == "":
        return 0
    seq, sep, tag = value.strip().partition("-")
    if not sep or tag != event_tag(run_id) or not seq.isdigit():
        raise InvalidEventId(value)
    return int(seq)


class RunEventLog(Protocol):
    """Where a run's events are kept."""

    async def append(self, run_id: uuid.UUID, event: str, data: Any) -> int:
        """Add an event; returns its sequence number."""

    def read(self, run_id: uuid.UUID, after: int = 0) -> AsyncIterator[LoggedEvent]:
        """The events after `after`, then new ones as they come, until the `end` event."""

    async def last_seq(self, run_id: uuid.UUID) -> int:
        """The sequence number of the newest event (0: none)."""

    async def ends(self, run_id: uuid.UUID) -> list[int]:
        """The sequence numbers of the run's `end` events (one per segment: a run paused
        and resumed has one for the pause and one for the end)."""

    async def expire(self, run_id: uuid.UUID, ttl_seconds: float) -> None:
        """Keep the log for `ttl_seconds` more, then drop it."""

    async def delete(self, run_id: uuid.UUID) -> None:
        """Drop the log now."""


@dataclass
class _Log:
    events: list[LoggedEvent] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    expires_at: float | None = None


class MemoryRunEventLog:
    """Event logs in this process (the embedded default, and the fallback while Redis is down)."""

    def __init__(self) -> None:
        self._logs: dict[uuid.UUID, _Log] = {}

    def _log(self, run_id: uuid.UUID) -> _Log:
        self._sweep()
        found = self._logs.get(run_id)
        if found is None:
            found = self._logs[run_id] = _Log()
        return found

    def _sweep(self) -> None:
        now = time.monotonic()
        for run_id in [k for k, v in self._logs.items() if v.expires_at and v.expires_at < now]:
            del self._logs[run_id]

    def has(self, run_id: uuid.UUID) -> bool:
        """Whether this process holds events of the run."""
        return run_id in self._logs

    async def append(self, run_id: uuid.UUID, event: str, data: Any) -> int:
        """Add an event and wake the readers."""
        entry = self._log(run_id)
        async with entry.changed:
            seq = len(entry.events) + 1
            entry.events.append(LoggedEvent(seq, event, data))
            entry.changed.notify_all()
        return seq

    async def seed(self, run_id: uuid.UUID, after: int) -> None:
        """Continue numbering after `after` (events before it live elsewhere): blank
        placeholders keep the sequence, and readers skip them."""
        entry = self._log(run_id)
        missing = after - len(entry.events)
        if missing > 0:
            start = len(entry.events) + 1
            entry.events.extend(LoggedEvent(i, "", None) for i in range(start, after + 1))

    async def read(self, run_id: uuid.UUID, after: int = 0) -> AsyncIterator[LoggedEvent]:
        """The events after `after`, then live ones, until `end`."""
        entry = self._log(run_id)
        index = after
        while True:
            async with entry.changed:
                while index >= len(entry.events):
                    await entry.changed.wait()
                batch = entry.events[index:]
            for item in batch:
                index = item.seq
                if item.event:
                    yield item
                if item.event == END_EVENT:
                    return

    async def last_seq(self, run_id: uuid.UUID) -> int:
        """The newest sequence number."""
        entry = self._logs.get(run_id)
        return len(entry.events) if entry is not None else 0

    async def ends(self, run_id: uuid.UUID) -> list[int]:
        """The sequence numbers of the `end` events."""
        entry = self._logs.get(run_id)
        return [e.seq for e in entry.events if e.event == END_EVENT] if entry is not None else []

    async def expire(self, run_id: uuid.UUID, ttl_seconds: float) -> None:
        """Drop the log `ttl_seconds` from now."""
        entry = self._logs.get(run_id)
        if entry is not None:
            entry.expires_at = time.monotonic() + ttl_seconds

    async def delete(self, run_id: uuid.UUID) -> None:
        """Drop the log now."""
        self._logs.pop(run_id, None)


class RedisRunEventLog:
    """Event logs in Redis streams (`<prefix>run:<id>:events`), shared by every process.

    Entries carry explicit ids `<seq>-0`, so numbering is the same as in memory. While Redis is
    unreachable (circuit open) appends and reads fall back to this process's log.
    """

    def __init__(
        self, redis: Redis, prefix: str, breaker: CircuitBreaker, block_ms: int = 500
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.breaker = breaker
        self.block_ms = block_ms
        self.local = MemoryRunEventLog()
        # The next sequence number of each run this process appends to.
        self._next: dict[uuid.UUID, int] = {}

    def _key(self, run_id: uuid.UUID) -> str:
        return f"{self.prefix}run:{run_id.hex}:events"

    async def append(self, run_id: uuid.UUID, event: str, data: Any) -> int:
        """Add an event to the Redis stream (or to this process while Redis is down)."""
        seq = self._next.get(run_id)
        if seq is None:
            try:
                seq = await self.last_seq(run_id) + 1
            except (RedisError, OSError) as error:
                self.breaker.record_failure(error)
                seq = 1
        self._next[run_id] = seq + 1
        if not self.breaker.is_open() and not self.local.has(run_id):
            try:
                await self.redis.xadd(
                    self._key(run_id),
                    {"e": event, "d": json.dumps(data, default=str, ensure_ascii=False)},
                    id=f"{seq}-0",
                )
            except (RedisError, OSError) as error:
                self.breaker.record_failure(error)
                log.warning("run_events_redis_unavailable", run_id=str(run_id))
            else:
                self.breaker.record_success()
                return seq
        # Continue the numbering where Redis left off, in this process.
        await self.local.seed(run_id, seq - 1)
        await self.local.append(run_id, event, data)
        return seq

    async def read(self, run_id: uuid.UUID, after: int = 0) -> AsyncIterator[LoggedEvent]:
        """Replay then follow the Redis stream; the local log when the run's events are here."""
        if self.local.has(run_id) or self.breaker.is_open():
            async for item in self.local.read(run_id, after):
                yield item
            return
        key = self._key(run_id)
        cursor = f"{after}-0"
        while True:
            try:
                answer: Any = await self.redis.xread({key: cursor}, block=self.block_ms, count=200)
            except (RedisError, OSError) as error:
                self.breaker.record_failure(error)
                async for item in self.local.read(run_id, after):
                    yield item
                return
            for _key, entries in answer or []:
                for entry_id, fields in entries:
                    raw_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    cursor = raw_id
                    seq = int(raw_id.split("-", 1)[0])
                    after = seq
                    name = _text(fields.get(b"e", fields.get("e")))
                    data = json.loads(_text(fields.get(b"d", fields.get("d"))) or "null")
                    yield LoggedEvent(seq, name, data)
                    if name == END_EVENT:
                        return
            if self.local.has(run_id):
                async for item in self.local.read(run_id, after):
                    yield item
                return

    async def last_seq(self, run_id: uuid.UUID) -> int:
        """The newest sequence number in Redis (or locally)."""
        if self.local.has(run_id):
            return await self.local.last_seq(run_id)
        last = await self.redis.xrevrange(self._key(run_id), count=1)
        if not last:
            return 0
        entry_id = last[0][0]
        raw = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        return int(raw.split("-", 1)[0])

    async def ends(self, run_id: uuid.UUID) -> list[int]:
        """The sequence numbers of the `end` events (read from Redis, or locally)."""
        if self.local.has(run_id):
            return await self.local.ends(run_id)
        try:
            entries: Any = await self.redis.xrange(self._key(run_id))
        except (RedisError, OSError) as error:
            self.breaker.record_failure(error)
            return await self.local.ends(run_id)
        found = []
        for entry_id, fields in entries:
            if _text(fields.get(b"e", fields.get("e"))) == END_EVENT:
                raw = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                found.append(int(raw.split("-", 1)[0]))
        return found

    async def expire(self, run_id: uuid.UUID, ttl_seconds: float) -> None:
        """Let Redis drop the stream after the TTL."""
        self._next.pop(run_id, None)
        await self.local.expire(run_id, ttl_seconds)
        try:
            await self.redis.expire(self._key(run_id), max(1, int(ttl_seconds)))
        except (RedisError, OSError) as error:
            self.breaker.record_failure(error)

    async def delete(self, run_id: uuid.UUID) -> None:
        """Drop the stream now."""
        self._next.pop(run_id, None)
        await self.local.delete(run_id)
        try:
            await self.redis.delete(self._key(run_id))
        except (RedisError, OSError) as error:
            self.breaker.record_failure(error)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
