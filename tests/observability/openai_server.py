"""A local OpenAI-compatible HTTP server for tests of processes that build their own ChatOpenAI.

It answers GET /v1/models and POST /v1/chat/completions, plain and streamed (SSE, with a usage
chunk when `stream_options.include_usage` is set). A request asking for a JSON schema
(structured output) is answered with `structured` as JSON; any other with `reply`, or with what
`respond(body)` returns: a text, a tool call `{"tool_call": {"name": ..., "arguments": {...}}}`,
or a text streamed slowly `{"text": ..., "word_delay": seconds}` (each word that late).
Every chat request body is kept in `requests`, so a test can check what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Respond = Callable[[dict[str, Any]], "str | dict[str, Any]"]


class OpenAIServer:
    """A started server on 127.0.0.1 (random port); use as a context manager to stop it."""

    def __init__(
        self,
        reply: str = "Hello from the test model.",
        structured: dict[str, Any] | None = None,
        model: str = "test-model",
        respond: Respond | None = None,
    ) -> None:
        self.reply = reply
        self.respond = respond
        self.structured = structured if structured is not None else {"route": "direct"}
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (ending in /v1)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OpenAIServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _content_for(self, body: dict[str, Any]) -> str | dict[str, Any]:
        response_format = body.get("response_format") or {}
        if response_format.get("type") in ("json_schema", "json_object"):
            return json.dumps(self.structured)
        if self.respond is not None:
            return self.respond(body)
        return self.reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                """GET /v1/models."""
                if self.path.rstrip("/").endswith("/models"):
                    self._json(
                        200,
                        {"object": "list", "data": [{"id": server.model, "object": "model"}]},
                    )
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                """POST /v1/chat/completions."""
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "not found"}})
                    return
                with server._lock:
                    server.requests.append(body)
                answer = server._content_for(body)
                call = answer.get("tool_call") if isinstance(answer, dict) else None
                word_delay = float(answer.get("word_delay", 0)) if isinstance(answer, dict) else 0
                content = str(answer.get("text", "")) if isinstance(answer, dict) else answer
                tool_calls = (
                    [
                        {
                            "index": 0,
                            "id": f"call_{len(server.requests)}",
                            "type": "function",
                            "function": {
                                "name": call["name"],
                                "arguments": json.dumps(call["arguments"]),
                            },
                        }
                    ]
                    if call
                    else None
                )
                finish_reason = "tool_calls" if tool_calls else "stop"
                usage = {
                    "prompt_tokens": 12,
                    "completion_tokens": len(content.split()),
                    "total_tokens": 12 + len(content.split()),
                }
                created = int(time.time())
                if not body.get("stream"):
                    self._json(
                        200,
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion",
                            "created": created,
                            "model": server.model,
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {
                                        "role": "assistant",
                                        "content": content,
                                        **({"tool_calls": tool_calls} if tool_calls else {}),
                                    },
                                    "finish_reason": finish_reason,
                                }
                            ],
                            "usage": usage,
                        },
                    )
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()

                def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                    return {
                        "id": "chatcmpl-test",
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": server.model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    }

                events = [chunk({"role": "assistant", "content": ""})]
                if tool_calls:
                    events.append(chunk({"tool_calls": tool_calls}))
                else:
                    words = content.split(" ")
                    events += [
                        chunk({"content": word if i == 0 else " " + word})
                        for i, word in enumerate(words)
                    ]
                events.append(chunk({}, finish_reason))
                if (body.get("stream_options") or {}).get("include_usage"):
                    events.append(
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": server.model,
                            "choices": [],
                            "usage": usage,
                        }
                    )
                for event in events:
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    if word_delay and event["choices"] and event["choices"][0]["delta"]:
                        self.wfile.flush()
                        time.sleep(word_delay)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler
