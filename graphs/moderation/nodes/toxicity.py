"""The `toxicity` stage: the model scores the text per category (validated, one repair)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

import prompts
from graphs.assistant.llm import chat_model
from graphs.moderation.context import Context, context_of
from graphs.moderation.nodes.stage import run_stage
from graphs.moderation.state import TOXICITY_CATEGORIES, Finding, ModerationState, ToxicityScores
from graphs.structured import ask_with_repair

TOXICITY = prompts.load("moderation_toxicity")


async def toxicity(state: ModerationState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Score the text; categories at or above the review threshold become findings (spanning
    the whole text)."""
    context = context_of(runtime)
    text = state["subject"]

    async def work() -> dict[str, Any]:
        messages = [
            SystemMessage(content=TOXICITY.render(categories=list(TOXICITY_CATEGORIES))),
            HumanMessage(content=text),
        ]
        llm = await chat_model(context.model_context())
        scores, usage = await ask_with_repair(llm, ToxicityScores, messages, what="toxicity")
        by_category = {name: float(getattr(scores, name)) for name in TOXICITY_CATEGORIES}
        findings: list[Finding] = [
            {
                "stage": "toxicity",
                "type": name,
                "start": 0,
                "end": len(text),
                # The span is the whole input; repeating it here would only copy the text.
                "text": "",
                "score": score,
                "source": "model",
            }
            for name, score in by_category.items()
            if score >= context.review_threshold
        ]
        return {"toxicity": by_category, "findings": findings, "usage": usage}

    return await run_stage("toxicity", context, work)
