"""The `pii` stage: pattern detectors first, then the model for names and addresses.

The pattern findings are kept even when the model part fails (under "continue").
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

import prompts
from graphs.assistant.llm import chat_model
from graphs.moderation.context import Context, context_of
from graphs.moderation.detectors import detect
from graphs.moderation.nodes.stage import run_stage
from graphs.moderation.state import Entities, Finding, ModerationState
from graphs.structured import ask_with_repair

PII = prompts.load("moderation_pii")
MODEL_SCORE = 0.8


def _overlaps(start: int, end: int, findings: list[Finding]) -> bool:
    return any(start < f["end"] and f["start"] < end for f in findings)


def locate(text: str, entities: Entities, taken: list[Finding]) -> list[Finding]:
    """Spans of the model's entities in `text` (every occurrence); ones not in it are dropped."""
    found: list[Finding] = []
    for entity in entities.entities:
        quoted = entity.text.strip()
        if not quoted:
            continue
        for match in re.finditer(re.escape(quoted), text):
            if _overlaps(match.start(), match.end(), taken + found):
                continue
            found.append(
                {
                    "stage": "pii",
                    "type": entity.type,
                    "start": match.start(),
                    "end": match.end(),
                    "text": quoted,
                    "score": MODEL_SCORE,
                    "source": "model",
                }
            )
    return found


async def pii(state: ModerationState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Find PII with its spans."""
    context = context_of(runtime)
    text = state["subject"]
    patterns: list[Finding] = [
        {
            "stage": "pii",
            "type": span["type"],
            "start": span["start"],
            "end": span["end"],
            "text": span["text"],
            "score": 1.0,
            "source": "pattern",
        }
        for span in detect(text)
    ]

    async def work() -> dict[str, Any]:
        if not context.model_pii:
            return {"findings": patterns}
        messages = [SystemMessage(content=PII.render()), HumanMessage(content=text)]
        llm = await chat_model(context.model_context())
        entities, usage = await ask_with_repair(llm, Entities, messages, what="PII detection")
        found = sorted(patterns + locate(text, entities, patterns), key=lambda f: f["start"])
        return {"findings": found, "usage": usage}

    return await run_stage("pii", context, work, partial={"findings": patterns})
