"""uvicorn's HTTP/1.1 protocol with a deadline for request headers.

uvicorn closes idle keep-alive connections but has no limit on how long a client may take to
send a request's headers, so a client trickling one header byte at a time (slowloris) holds a
connection forever. This protocol closes a connection whose request headers are not complete
within MAI_REQUEST_HEADER_TIMEOUT_SECONDS of it opening, or of the previous response ending.
Bodies have their own timeout (MAI_REQUEST_READ_TIMEOUT_SECONDS, in app.api.limits).

The class lives at module level so that uvicorn can hand it to worker processes; each process
reads the timeout from its own settings.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutH11Protocol(H11Protocol):
    """H11Protocol plus a timer armed while a request's headers are awaited."""

    # None: read MAI_REQUEST_HEADER_TIMEOUT_SECONDS on first use.
    timeout_seconds: ClassVar[float | None] = None
    header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def _timeout(cls) -> float:
        if cls.timeout_seconds is None:
            from app.core.config import load_settings

            cls.timeout_seconds = load_settings().request_header_timeout_seconds
        return cls.timeout_seconds

    def _arm(self) -> None:
        self._disarm()
        self.header_timer = self.loop.call_later(self._timeout(), self._headers_too_slow)

    def _disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _headers_too_slow(self) -> None:
        self.header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.conn.send(h11.ConnectionClosed())
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        """Stop the clock once a request's headers are in."""
        super().handle_events()
        if not self._waiting_for_headers():
            self._disarm()

    def on_response_complete(self) -> None:
        """Start the clock again for the next request on this connection."""
        super().on_response_complete()
        if not self.transport.is_closing() and self._waiting_for_headers():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timer with the connection."""
        self._disarm()
        super().connection_lost(exc)
