"""The `sanitize` stage: mask the PII findings with typed placeholders."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graphs.moderation.context import Context, context_of
from graphs.moderation.nodes.stage import run_stage
from graphs.moderation.state import ModerationState
from graphs.moderation.tools import mask


async def sanitize(state: ModerationState, runtime: Runtime[Context]) -> dict[str, Any]:
    """The sanitized text; the reversible mapping goes to private state, not the output."""
    context = context_of(runtime)

    async def work() -> dict[str, Any]:
        findings = [f for f in state.get("findings", []) if f["stage"] == "pii"]
        sanitized, mapping = mask(state["subject"], findings)
        return {"sanitized": sanitized, "mapping": mapping}

    return await run_stage("sanitize", context, work)
