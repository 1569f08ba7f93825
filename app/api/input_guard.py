"""Refuse NUL characters in request text at the edge, the same way on every backend.

PostgreSQL cannot store U+0000 in text columns (and SQLite silently can): without this guard a
NUL in a message, a title or a filter reached the database and failed there as a 500 on one
backend while succeeding on the other. NUL never belongs in text a person typed, so the path,
the query string and JSON bodies are checked before any route runs (400 `nul_character`).
Multipart uploads are streamed and not buffered here; their text fields are validated by the
upload route itself.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import OPENAI_PREFIX, error_body, openai_error_body

_ESCAPED_NUL = b"\\u0000"


def contains_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds U+0000 in any string, key or nested item."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1").lower()
    return ""


def _json_has_nul(body: bytes) -> bool:
    if _ESCAPED_NUL not in body:
        return False  # a raw 0x00 byte is invalid JSON, which the body parser answers
    try:
        return contains_nul(json.loads(body))
    except ValueError:
        return False  # not JSON: the route's own parsing answers it


class NulCharacterGuard:
    """ASGI middleware: 400 `nul_character` for NUL in the path, query string or a JSON body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request; buffer and replay a (JSON) body so the route still reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = None
        if "\x00" in scope.get("path", ""):
            where = "the URL path"
        elif b"\x00" in unquote_to_bytes(bytes(scope.get("query_string", b""))):
            where = "the query string (%00)"
        buffered: list[Message] = []
        content_type = _header(scope, b"content-type")
        if where is None and not content_type.startswith(("multipart/", "text/event-stream")):
            body = b""
            while True:
                message = await receive()
                buffered.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            if body and _json_has_nul(body):
                where = "the JSON body (\\u0000)"
        if where is not None:
            state = scope.get("state", {})
            request_id = state.get("request_id")
            detail = (
                f"A NUL character was found in {where}; NUL cannot be stored as text. "
                "Remove it and send the request again."
            )
            response = JSONResponse(
                openai_error_body(400, "nul_character", detail)
                if str(scope.get("path", "")).startswith(OPENAI_PREFIX)
                else error_body(
                    "nul_character", detail, str(request_id) if request_id is not None else None
                ),
                status_code=400,
            )
            await response(scope, receive, send)
            return

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)
