"""The system prompt of the answering call, rendered from `prompts/` for this turn."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from langchain_core.messages import SystemMessage

import prompts
from graphs.assistant.context import Context
from graphs.assistant.state import Route, UsedMemory
from graphs.tools import ToolSpec

# Loaded at import so a broken template fails when the graph is imported, not mid-run.
SYSTEM = prompts.load("system")
KNOWLEDGE = prompts.load("knowledge")


def tool_lines(tools: Sequence[ToolSpec]) -> list[dict[str, str]]:
    """Tools as name/description pairs for templates."""
    return [{"name": spec.name, "description": spec.description} for spec in tools]


def system_message(
    context: Context,
    route: Route,
    summary: str,
    tools: Sequence[ToolSpec],
    memories: Sequence[UsedMemory] = (),
) -> SystemMessage:
    """The system prompt: persona, tools offered, knowledge rules, summary, recalled memories."""
    instructions = ""
    if route == "knowledge":
        instructions = KNOWLEDGE.render(knowledge_available=context.retriever is not None)
    text = SYSTEM.render(
        today=datetime.now(UTC).strftime("%A %d %B %Y"),
        tools=tool_lines(tools),
        summary=summary,
        instructions=instructions,
        memories=[{"kind": m["kind"], "content": m["content"]} for m in memories],
    )
    return SystemMessage(content=text)
