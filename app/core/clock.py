"""Time as a dependency, so expiry, windows and buckets can be tested with a controlled clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the current time."""

    def now(self) -> datetime:
        """The current time, timezone-aware in UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for windows and timeouts."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware in UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds on the real monotonic clock."""
        return time.monotonic()


class FrozenClock:
    """A clock that moves only when told to; for tests and benchmarks."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 1_000_000.0

    def now(self) -> datetime:
        """The frozen time."""
        return self._now

    def monotonic(self) -> float:
        """The frozen monotonic reading."""
        return self._mono

    def advance(self, delta: timedelta | float) -> None:
        """Move the clock forward by a timedelta or a number of seconds."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def set(self, moment: datetime) -> None:
        """Jump to a moment (forward or back; the monotonic reading follows forward jumps)."""
        delta = (moment - self._now).total_seconds()
        self._now = moment
        if delta > 0:
            self._mono += delta


def utcnow() -> datetime:
    """The current UTC time, timezone-aware."""
    return datetime.now(UTC)
