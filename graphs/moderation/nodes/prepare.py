"""The `prepare` node: check the input, pick the stages, clear the previous run's results."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graphs.assistant.messages import text_of
from graphs.moderation.context import Context, context_of
from graphs.moderation.state import STAGES, ModerationState, Stage


class ModerationInputError(ValueError):
    """The input cannot be moderated (no text, too long, unknown stage)."""


def subject_of(state: ModerationState) -> str:
    """The text to moderate: `text`, else the last human message."""
    if state.get("text"):
        return str(state.get("text"))
    for message in reversed(state.get("messages") or []):
        if message.type == "human":
            return text_of(message)
    return ""


def prepare(state: ModerationState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Fix the subject and the stages (all three when none are named)."""
    context = context_of(runtime)
    subject = subject_of(state)
    if not subject.strip():
        raise ModerationInputError("send a non-empty `text` (or a message) to moderate")
    if len(subject) > context.max_chars:
        raise ModerationInputError(f"the text is longer than {context.max_chars} characters")
    requested = state.get("stages") or list(STAGES)
    unknown = [stage for stage in requested if stage not in STAGES]
    if unknown:
        raise ModerationInputError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    selected: list[Stage] = [stage for stage in STAGES if stage in requested]
    return {
        "subject": subject,
        "selected": selected,
        "toxicity": {},
        "findings": None,
        "sanitized": None,
        "mapping": {},
        "reports": None,
        "usage": None,
    }
