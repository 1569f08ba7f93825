"""Sliding-window rate limits: Redis (shared by all processes) or in-process; fail open."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.clock import Clock
from app.core.kv import CircuitBreaker
from app.core.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """The outcome of one hit against a limit."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the oldest hit in the window leaves it
    degraded: bool = False  # the backend was down and the hit was let through

    @property
    def headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers (and Retry-After when refused)."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


class RateLimiter(Protocol):
    """Counts hits per key in a sliding window."""

    backend: str

    async def hit(self, key: str, limit: int, window_seconds: float) -> RateLimitResult:
        """Record a hit for key unless it is over limit within the last window_seconds."""


def _reset(oldest: float | None, now: float, window: float) -> int:
    if oldest is None:
        return math.ceil(window)
    return max(0, math.ceil(oldest + window - now))


class MemoryRateLimiter:
    """A sliding-window log per key, for one process."""

    backend = "in-process"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    async def hit(self, key: str, limit: int, window_seconds: float) -> RateLimitResult:
        """Record a hit for key unless it is over limit within the window."""
        now = self.clock.now().timestamp()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window_seconds:
            hits.popleft()
        if len(hits) >= limit:
            return RateLimitResult(False, limit, 0, _reset(hits[0], now, window_seconds))
        hits.append(now)
        if len(self._hits) > 50_000:
            self._forget_idle(now, window_seconds)
        return RateLimitResult(True, limit, limit - len(hits), _reset(hits[0], now, window_seconds))

    def _forget_idle(self, now: float, window: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - window]:
            del self._hits[key]


# Atomic sliding-window log: drop hits older than the window, count, add when under the limit.
_SLIDING_WINDOW = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local member = ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, member)
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', key, math.ceil(window * 1000))
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local first = oldest[2] or now
return {allowed, count, tostring(first)}
"""


class RedisRateLimiter:
    """The sliding-window log in a Redis sorted set, shared by every service process."""

    backend = "redis"

    def __init__(self, redis: Redis, prefix: str, clock: Clock, breaker: CircuitBreaker) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock
        self.breaker = breaker
        self._script = redis.register_script(_SLIDING_WINDOW)
        # While Redis is down, limits hold per process rather than not at all.
        self._fallback = MemoryRateLimiter(clock)

    async def _local(self, key: str, limit: int, window_seconds: float) -> RateLimitResult:
        result = await self._fallback.hit(key, limit, window_seconds)
        return dataclasses.replace(result, degraded=True)

    async def hit(self, key: str, limit: int, window_seconds: float) -> RateLimitResult:
        """Record a hit; when Redis is down, count it in this process's own window."""
        now = self.clock.now().timestamp()
        if self.breaker.is_open():
            return await self._local(key, limit, window_seconds)
        try:
            allowed, count, first = await self._script(
                keys=[f"{self.prefix}ratelimit:{key}"],
                args=[now, window_seconds, limit, f"{now}:{uuid.uuid4().hex[:8]}"],
            )
        except (RedisError, OSError) as error:
            self.breaker.record_failure(error)
            return await self._local(key, limit, window_seconds)
        self.breaker.record_success()
        remaining = max(0, limit - int(count))
        reset = _reset(float(first), now, window_seconds)
        return RateLimitResult(bool(int(allowed)), limit, remaining, reset)
