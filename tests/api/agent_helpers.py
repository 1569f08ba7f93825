"""Helpers for the agent API tests: SSE parsing, a tool that waits on a gate, app start-up."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel

from app.core.resources import Resources
from graphs.tools import ToolContext, ToolSpec


@dataclass
class SSEEvent:
    """One parsed server-sent event."""

    event: str
    data: Any


def parse_sse(body: str) -> tuple[list[SSEEvent], int]:
    """Events of an SSE body, and how many comment (heartbeat) lines it had."""
    events: list[SSEEvent] = []
    comments = 0
    for block in body.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data_lines = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                comments += 1
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data_lines.append(line[5:].lstrip(" "))
        if data_lines:
            events.append(SSEEvent(name, json.loads("\n".join(data_lines))))
    return events, comments


class NoArgs(BaseModel):
    """A tool without arguments."""


class Gate:
    """A `wait_gate` tool that blocks until released: keeps a turn running on demand."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def _run(self, _args: BaseModel, _context: ToolContext) -> str:
        self.entered.set()
        await self.release.wait()
        return "gate opened"

    def install(self, resources: Resources) -> None:
        """Add the tool to the app's registry (the public `extended` API)."""
        assert resources.tool_registry is not None
        resources.tool_registry = resources.tool_registry.extended(
            ToolSpec(
                name="wait_gate",
                description="Waits until the test opens the gate.",
                args_schema=NoArgs,
                coroutine=self._run,
                category="test",
                timeout_seconds=60,
            )
        )


async def wait_idle(client: httpx.AsyncClient, headers: dict[str, str], cid: str) -> Any:
    """Poll a conversation until no turn runs on it; returns its body."""
    for _ in range(500):
        body = (await client.get(f"/api/v1/agent/conversations/{cid}", headers=headers)).json()
        if not body["running"]:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError("the turn did not finish")
