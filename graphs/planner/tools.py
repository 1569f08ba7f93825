"""The planner's tools: the capabilities a plan step can name as its `agent`.

A capability is an async callable `(StepCall) -> StepOutput`. The built-ins run the other MAI
graphs (`assistant`, `sentiment`, `moderation`) as subgraphs, or one focused job
(`knowledge`: retrieve and answer with citations; `web_search`: the web_search tool). Only the
available ones are offered to the model: `knowledge` needs a retriever, `web_search` a
configured provider. `Context.capabilities` adds your own or replaces a built-in; its first
docstring line is what the planning prompt says about it.

A capability signals failure by raising (`StepFailed` for an expected one); the `run_step` node
turns that into a step result with status "error", applying the timeout and retry policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

import prompts
from graphs.assistant.llm import chat_model
from graphs.assistant.messages import add_usage, text_of
from graphs.assistant.nodes.synthesize import cite
from graphs.assistant.state import Citation, Usage, no_usage
from graphs.assistant.toolset import default_registry
from graphs.planner.context import Context, StepCall
from graphs.planner.state import StepOutput
from graphs.tools import ToolContext, ToolRegistry, run_tool

STEP_KNOWLEDGE = prompts.load("plan_step_knowledge")


class StepFailed(Exception):
    """A step could not do its job; the message says why (it lands in the step's result)."""


Capability = Callable[[StepCall], Awaitable[StepOutput]]


def output(
    text: str,
    *,
    citations: list[Citation] | None = None,
    data: dict[str, Any] | None = None,
    usage: Usage | None = None,
) -> StepOutput:
    """A StepOutput with empty defaults."""
    return {
        "text": text,
        "citations": citations or [],
        "data": data or {},
        "usage": usage or no_usage(),
    }


async def run_assistant(call: StepCall) -> StepOutput:
    """Reasoning, writing and tool use: the MAI assistant graph answers the instruction."""
    # Imported here: the assistant graph is compiled at import, and only this step needs it.
    from graphs.assistant.graph import graph as assistant

    result = await assistant.ainvoke(
        {"messages": [HumanMessage(content=call.prompt())]},
        context=call.context.assistant_context(),
    )
    answer = str(result.get("answer") or "")
    if not answer.strip():
        raise StepFailed("the assistant produced no answer")
    usage = result.get("usage") or no_usage()
    return output(answer, citations=list(result.get("citations") or []), usage=usage)


async def run_knowledge(call: StepCall) -> StepOutput:
    """Search the user's knowledge base and answer from the passages found, citing them [n]."""
    context = call.context
    if context.retriever is None:
        raise StepFailed("the knowledge base is not configured")
    query = call.step["instruction"]
    passages = await context.retriever.search(query, user_id=context.user_id, top_k=context.top_k)
    if not passages:
        return output("No relevant passages were found in the knowledge base.")
    numbered = [
        {"number": index, "title": passage["title"], "text": passage["text"]}
        for index, passage in enumerate(passages, start=1)
    ]
    messages = [
        SystemMessage(content=STEP_KNOWLEDGE.render(passages=numbered)),
        HumanMessage(content=call.prompt()),
    ]
    llm = await chat_model(context.assistant_context())
    reply = await llm.ainvoke(messages)
    answer = text_of(reply).strip()
    if not answer:
        raise StepFailed("the model gave no answer for the knowledge step")
    return output(answer, citations=cite(answer, passages), usage=add_usage(None, reply, messages))


def registry_of(context: Context) -> ToolRegistry:
    """The run's tools: `context.tools`, else the built-ins configured from MAI_* variables."""
    return context.tools if context.tools is not None else default_registry()


async def run_web_search(call: StepCall) -> StepOutput:
    """Search the web for current information (news, prices, recent facts)."""
    context = call.context
    spec = registry_of(context).get("web_search")
    if spec is None or not spec.enabled:
        raise StepFailed("web search is not configured")
    outcome = await run_tool(
        spec,
        {"query": call.step["instruction"][:400]},
        ToolContext(user_id=context.user_id),
        timeout=context.step_timeout_seconds,
    )
    if outcome.status != "ok":
        raise StepFailed(outcome.content)
    return output(outcome.content)


async def run_sentiment(call: StepCall) -> StepOutput:
    """Sentiment of a text (label, score, aspects): of the earlier steps' results, else of the
    instruction."""
    from graphs.sentiment import Context as SentimentContext
    from graphs.sentiment import graph as sentiment

    context = call.context
    result = await sentiment.ainvoke(
        {"text": call.subject()},
        context=SentimentContext(
            user_id=context.user_id,
            model=context.model,
            llm_base_url=context.llm_base_url,
            llm_api_key=context.llm_api_key,
            llm=context.llm,
        ),
    )
    analysis = result["result"]
    aspects = "; ".join(f"{aspect['aspect']}: {aspect['label']}" for aspect in analysis["aspects"])
    text = f"Sentiment: {analysis['label']} (score {analysis['score']:+.2f}). "
    text += analysis["rationale"] + (f" Aspects: {aspects}." if aspects else "")
    data = {key: analysis[key] for key in ("label", "score", "aspects", "rationale")}
    return output(text, data=data, usage=result.get("usage"))


async def run_moderation(call: StepCall) -> StepOutput:
    """Moderation of a text (toxicity, PII, sanitized copy): of the earlier steps' results, else
    of the instruction."""
    from graphs.moderation import Context as ModerationContext
    from graphs.moderation import graph as moderation

    context = call.context
    result = await moderation.ainvoke(
        {"text": call.subject()},
        context=ModerationContext(
            user_id=context.user_id,
            model=context.model,
            llm_base_url=context.llm_base_url,
            llm_api_key=context.llm_api_key,
            llm=context.llm,
        ),
    )
    # Only the kinds of PII found travel on: the values stay in the moderation run.
    kinds = sorted({f["type"] for f in result.get("findings", []) if f["stage"] == "pii"})
    reasons = "; ".join(result.get("reasons") or []) or "no concerns"
    text = f"Moderation verdict: {result['verdict']} ({reasons})."
    if kinds:
        text += f" Personal data found and masked: {', '.join(kinds)}."
    if result.get("sanitized") is not None:
        text += f"\nSanitized text:\n{result['sanitized']}"
    data = {
        "verdict": result["verdict"],
        "reasons": list(result.get("reasons") or []),
        "toxicity": dict(result.get("toxicity") or {}),
        "pii_types": kinds,
        "sanitized": result.get("sanitized"),
    }
    return output(text, data=data, usage=result.get("usage"))


BUILTIN: dict[str, Capability] = {
    "assistant": run_assistant,
    "knowledge": run_knowledge,
    "web_search": run_web_search,
    "sentiment": run_sentiment,
    "moderation": run_moderation,
}


def describe(capability: Capability) -> str:
    """What the planning prompt says about a capability: its docstring's first line."""
    doc = (capability.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else "A custom capability."


def capabilities_of(context: Context) -> Mapping[str, Capability]:
    """The capabilities this run can plan with, by name: the available built-ins, then yours."""
    web = registry_of(context).get("web_search")
    unavailable = set()
    if context.retriever is None:
        unavailable.add("knowledge")
    if web is None or not web.enabled:
        unavailable.add("web_search")
    available = {name: run for name, run in BUILTIN.items() if name not in unavailable}
    available.update(context.capabilities or {})
    return available
