"""A real local HTTP server for the HTTP tools' tests (no internet, no mocks).

Routes map (method, path) to a function of the recorded request returning (status, body,
headers); every request is recorded so tests can assert what the tool sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body or b"null")


Reply = tuple[int, Any, dict[str, str]]
Handler = Callable[[Request], Reply]


@dataclass
class LocalServer:
    """A running server: its base URL, its routes and what it received."""

    url: str
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer `method path` with `handler(request)`."""
        self.routes[(method, path)] = handler

    def json(self, method: str, path: str, body: Any, status: int = 200) -> None:
        """Answer `method path` with a fixed JSON body."""
        self.route(method, path, lambda _: (status, body, {}))


def _handler_class(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            server.requests.append(request)
            handler = server.routes.get((self.command, parts.path))
            if handler is None:
                status, body, headers = 404, {"error": "not found"}, {}
            else:
                status, body, headers = handler(request)
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            content_type = "application/octet-stream" if isinstance(body, bytes) else None
            self.send_header("Content-Type", content_type or "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def serve() -> Iterator[LocalServer]:
    """Start a server on a free port in a thread; stop it afterwards."""
    state = LocalServer(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
