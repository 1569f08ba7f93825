"""Fixtures for the observability tests: an app with a scripted model, and a Langfuse stand-in."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fake_llm import ask_tools, tool_call

QUERY = "/api/v1/agent/query"


def tool_turn(answer: str = "It is 4.") -> list[Any]:
    """The scripted replies of a turn that calls the calculator once, then answers."""
    return [
        {"route": "tools"},
        ask_tools(tool_call("calculator", {"expression": "2+2"})),
        answer,
    ]


class TraceCollector:
    """A stand-in for Langfuse's OTLP endpoint: accepts every export, or hangs on each one.

    `requests` holds (path, headers with lower-case names) of every POST received;
    `hang=True` never answers (the connection stays open until the server stops), like a
    Langfuse that is up but stuck.
    """

    def __init__(self, *, hang: bool = False) -> None:
        self.hang = hang
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.received = threading.Event()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL to use as LANGFUSE_HOST."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        """Release hanging requests and stop."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

            def do_POST(self) -> None:
                """Record the export; answer 200, or hang until the server stops."""
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                collector.requests.append((self.path, headers))
                collector.received.set()
                if collector.hang:
                    collector._stop.wait(60)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        return Handler


@pytest.fixture
def trace_collector() -> Iterator[TraceCollector]:
    """A Langfuse stand-in that accepts spans."""
    collector = TraceCollector()
    yield collector
    collector.close()


@pytest.fixture
def hanging_collector() -> Iterator[TraceCollector]:
    """A Langfuse stand-in that never answers."""
    collector = TraceCollector(hang=True)
    yield collector
    collector.close()
