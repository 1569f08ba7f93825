"""A small key-value store with expiry: Redis when configured, in-process otherwise."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.clock import Clock, SystemClock
from app.core.logging import get_logger

log = get_logger(__name__)


class KeyValueStore(Protocol):
    """Short-lived shared state: token deny-lists, caches, counters."""

    backend: str

    async def get(self, key: str) -> str | None:
        """The value stored at key, or None when absent or expired."""

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        """Store value at key, forgetting it after ttl_seconds when given."""

    async def delete(self, *keys: str) -> None:
        """Forget these keys."""

    async def delete_prefix(self, prefix: str) -> None:
        """Forget every key that starts with prefix."""

    async def ping(self) -> None:
        """Raise when the store cannot be reached."""

    async def close(self) -> None:
        """Release connections."""


class MemoryStore:
    """The embedded store: a dict with expiry, for one process."""

    backend = "in-process"

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._data: dict[str, tuple[str, float | None]] = {}
        self._lock = asyncio.Lock()

    def _alive(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, deadline = item
        if deadline is not None and self._clock.monotonic() >= deadline:
            del self._data[key]
            return None
        return value

    async def get(self, key: str) -> str | None:
        """The value stored at key, or None when absent or expired."""
        return self._alive(key)

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        """Store value at key, forgetting it after ttl_seconds when given."""
        deadline = None if ttl_seconds is None else self._clock.monotonic() + ttl_seconds
        self._data[key] = (value, deadline)
        if len(self._data) > 10_000:
            self._sweep()

    def _sweep(self) -> None:
        now = self._clock.monotonic()
        for key in [k for k, (_, d) in self._data.items() if d is not None and d <= now]:
            del self._data[key]

    async def delete(self, *keys: str) -> None:
        """Forget these keys."""
        for key in keys:
            self._data.pop(key, None)

    async def delete_prefix(self, prefix: str) -> None:
        """Forget every key that starts with prefix."""
        for key in [k for k in self._data if k.startswith(prefix)]:
            del self._data[key]

    async def ping(self) -> None:
        """Always reachable."""

    async def close(self) -> None:
        """Nothing to release."""
        self._data.clear()


class CircuitBreaker:
    """Skips Redis for a while after a failure, so an outage costs one timeout, not one a call."""

    def __init__(self, cooldown_seconds: float = 5.0) -> None:
        self.cooldown_seconds = cooldown_seconds
        self._open_until = 0.0
        self.failures = 0

    def is_open(self) -> bool:
        """Whether calls should skip Redis right now."""
        return time.monotonic() < self._open_until

    def record_failure(self, error: BaseException) -> None:
        """Open the breaker and log the outage (once per cooldown)."""
        self.failures += 1
        self._open_until = time.monotonic() + self.cooldown_seconds
        log.warning("redis_unavailable_failing_open", error=f"{type(error).__name__}: {error}")

    def record_success(self) -> None:
        """Close the breaker."""
        self._open_until = 0.0


class RedisStore:
    """The shared store on Redis; every key is namespaced by the configured prefix.

    Reads and writes fail open: when Redis is down a read is a miss and a write is dropped (and
    logged), so the service keeps answering; what must hold across an outage is also in the DB.
    """

    backend = "redis"

    def __init__(self, redis: Redis, prefix: str, breaker: CircuitBreaker | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.breaker = breaker or CircuitBreaker()

    def key(self, key: str) -> str:
        """The full Redis key for a store key."""
        return self.prefix + key

    async def get(self, key: str) -> str | None:
        """The value stored at key, or None when absent, expired, or Redis is down."""
        if self.breaker.is_open():
            return None
        try:
            value = await self.redis.get(self.key(key))
        except (RedisError, OSError) as error:
            self.breaker.record_failure(error)
            return None
        self.breaker.record_success()
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        """Store value at key, forgetting it after ttl_seconds when given."""
        if self.breaker.is_open():
            return
        px = None if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        try:
            await self.redis.set(self.key(key), value, px=px)
        except (RedisError, OSError) as error:
            self.breaker.record_failure(error)

    async def delete(self, *keys: str) -> None:
        """Forget these keys."""
        if not keys or self.breaker.is_open():
            return
        try:
            await self.redis.delete(*(self.key(k) for k in keys))
        except (RedisError, OSError) as error:
            self.breaker.record_failure(error)

    async def delete_prefix(self, prefix: str) -> None:
        """Forget every key that starts with prefix (SCAN, never KEYS)."""
        if self.breaker.is_open():
            return
        batch: list[bytes | str] = []
        try:
            async for key in self.redis.scan_iter(match=self.key(prefix) + "*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    await self.redis.delete(*batch)
                    batch = []
            if batch:
                await self.redis.delete(*batch)
        except (RedisError, OSError) as error:
            self.breaker.record_failure(error)

    async def ping(self) -> None:
        """Raise when Redis cannot be reached."""
        await self.redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()


def create_redis(url: str) -> Redis:
    """A Redis client with short timeouts, so an outage fails fast instead of hanging requests."""
    return Redis.from_url(
        url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        health_check_interval=30,
    )
