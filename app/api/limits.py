"""Request limits enforced before any route, dependency or auth runs (pure ASGI).

A body over MAI_MAX_BODY_BYTES is refused with 413 as soon as it is known to be too big: from
Content-Length when sent, else while it streams in, so a 100 MB body costs at most the limit
in memory and is never read whole. Uploads (multipart) stream through with their own, larger
limit (MAI_KB_MAX_UPLOAD_MB plus room for the form), which the upload route enforces exactly.
A JSON body nested deeper than MAI_MAX_JSON_DEPTH is refused with 400 before it is parsed, and
a client that stops sending its body for MAI_REQUEST_READ_TIMEOUT_SECONDS gets 408.
"""

from __future__ import annotations

import asyncio
import re

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import OPENAI_PREFIX, error_body, openai_error_body

# Room for the multipart framing and form fields around an upload of the maximum size.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays/objects deeper than limit (brackets inside strings
    do not count). Linear in the body; invalid JSON is left to the parser to answer."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1").strip().lower()
    return ""


class RequestLimitMiddleware:
    """Body size, JSON depth and body read timeout, checked before the app sees the request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        max_json_depth: int,
        read_timeout_seconds: float,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes + MULTIPART_OVERHEAD_BYTES
        self.max_json_depth = max_json_depth
        self.read_timeout = read_timeout_seconds

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str
    ) -> None:
        request_id = scope.get("state", {}).get("request_id")
        body = (
            # OpenAI's clients read their own error shape on the OpenAI-compatible API.
            openai_error_body(status, code, detail)
            if str(scope.get("path", "")).startswith(OPENAI_PREFIX)
            else error_body(code, detail, str(request_id) if request_id is not None else None)
        )
        response = JSONResponse(
            body,
            status_code=status,
            # The rest of the body is not read: the connection cannot be reused.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    def _too_large(self, limit: int, upload: bool) -> tuple[int, str, str]:
        what = "MAI_KB_MAX_UPLOAD_MB" if upload else "MAI_MAX_BODY_BYTES"
        return (
            413,
            "payload_too_large",
            f"The request body is over the {limit}-byte limit ({what}); send less.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse an oversized, too deep or stalled body; otherwise pass the request on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = _header(scope, b"content-type")
        upload = content_type.startswith("multipart/")
        # FastAPI parses a body without a content type as JSON too.
        json_body = not content_type or "json" in content_type.split(";", 1)[0]
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, *self._too_large(limit, upload))
            return
        if upload:
            await self.app(scope, self._counting(receive, limit), send)
            return
        # JSON and other small bodies: read them here (at most `limit` bytes) so that every
        # check happens before the app runs, then hand the app the same messages.
        buffered: list[Message] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except TimeoutError:
                await self._refuse(
                    scope,
                    receive,
                    send,
                    408,
                    "request_timeout",
                    f"The request body did not arrive within {self.read_timeout:g}s.",
                )
                return
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await self._refuse(scope, receive, send, *self._too_large(limit, upload))
                return
            if not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in buffered if m["type"] == "http.request")
        if json_body and body and json_depth_exceeds(body, self.max_json_depth):
            await self._refuse(
                scope,
                receive,
                send,
                400,
                "json_too_deep",
                f"The JSON body nests arrays or objects more than {self.max_json_depth} levels "
                "deep (MAI_MAX_JSON_DEPTH); flatten it.",
            )
            return

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    def _counting(self, receive: Receive, limit: int) -> Receive:
        """A receive that raises 413 past the limit and 408 when the body stalls."""
        size = 0
        done = False

        async def counted() -> Message:
            nonlocal size, done
            if done:
                return await receive()  # the body is in: this waits for the disconnect
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except TimeoutError:
                raise HTTPException(
                    408, f"The request body did not arrive within {self.read_timeout:g}s."
                ) from None
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    _, _, detail = self._too_large(limit, upload=True)
                    raise HTTPException(413, detail)
                done = not message.get("more_body", False)
            return message

        return counted
