"""The sentiment nodes: `prepare` the batch, `analyze` one text, `collect` the results.

`analyze` looks up the glossary terms of its text (the graph's tool), asks the model for a
`SentimentResult` and validates it; an invalid answer is shown back to the model once, and a
second invalid one fails the run with `SentimentInvalid` naming the text.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

import prompts
from graphs.assistant.llm import chat_model
from graphs.assistant.messages import text_of
from graphs.sentiment.context import Context, context_of
from graphs.sentiment.state import Analysis, SentimentResult, SentimentState, TextTask
from graphs.sentiment.tools import load_glossary, lookup_terms
from graphs.structured import OutputInvalid, ask_with_repair

SENTIMENT = prompts.load("sentiment")


class SentimentInvalid(ValueError):
    """Bad input (no text, too many, too long) or a model answer that stayed invalid."""


def _texts(state: SentimentState) -> list[str]:
    if state.get("texts"):
        return list(state.get("texts") or [])
    if state.get("text"):
        return [str(state.get("text"))]
    for message in reversed(state.get("messages") or []):
        if message.type == "human":
            return [text_of(message)]
    return []


def prepare(state: SentimentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check the input and fix the batch: `texts`, else `text`, else the last human message."""
    context = context_of(runtime)
    texts = _texts(state)
    if not texts or any(not isinstance(text, str) or not text.strip() for text in texts):
        raise SentimentInvalid("send a non-empty `text`, a list of non-empty `texts`, or a message")
    if len(texts) > context.max_texts:
        raise SentimentInvalid(f"at most {context.max_texts} texts per run, got {len(texts)}")
    too_long = [i for i, text in enumerate(texts) if len(text) > context.max_chars]
    if too_long:
        raise SentimentInvalid(
            f"text {too_long[0]} is longer than {context.max_chars} characters; split it"
        )
    return {"batch": texts, "analyses": None, "usage": None}


async def analyze(state: TextTask, runtime: Runtime[Context]) -> dict[str, Any]:
    """Analyse one text into a validated result."""
    context = context_of(runtime)
    text = state["text"]
    hits = lookup_terms(text, load_glossary(context.glossary_path))
    messages = [
        SystemMessage(content=SENTIMENT.render(glossary=hits)),
        HumanMessage(content=text),
    ]
    llm = await chat_model(context.model_context())
    try:
        result, usage = await ask_with_repair(
            llm, SentimentResult, messages, what=f"sentiment of text {state['index']}"
        )
    except OutputInvalid as error:
        raise SentimentInvalid(str(error)) from error
    analysis: Analysis = {
        "index": state["index"],
        "text": text,
        "label": result.label,
        "score": result.score,
        "aspects": [aspect.model_dump() for aspect in result.aspects],
        "rationale": result.rationale,
        "glossary": hits,
    }
    return {"analyses": [analysis], "usage": usage}


def collect(state: SentimentState) -> dict[str, Any]:
    """Put the results in input order; `result` is the only one for a single text."""
    results = sorted(state.get("analyses", []), key=lambda analysis: analysis["index"])
    return {"results": results, "result": results[0] if len(results) == 1 else None}
