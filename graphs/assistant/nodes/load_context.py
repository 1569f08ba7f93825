"""The `load_context` node: keeps the history within the message and token budgets.

The model sees the system prompt (from `prompts/`, rendered by `call_model`), the running
summary, and the most recent messages. When the history grows past `max_history_messages` or
the token budget, the oldest turns are folded into `summary` with one model call (tagged
nostream) and removed from the state with RemoveMessage, so checkpoints stay small too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, RemoveMessage
from langchain_core.messages.utils import count_tokens_approximately, trim_messages
from langchain_core.runnables import RunnableConfig
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import Runtime

import prompts
from graphs.assistant.context import Context, context_of
from graphs.assistant.llm import chat_model
from graphs.assistant.messages import add_usage, count_tokens, text_of, transcript
from graphs.assistant.prompting import system_message
from graphs.assistant.state import AssistantState, Usage
from graphs.assistant.toolset import offered_tools

SUMMARY = prompts.load("summary")
QUIET: RunnableConfig = {"tags": [TAG_NOSTREAM]}
# After a fold the history is cut to this share of the limits, so the next fold is turns away
# instead of one summary call on every turn once a conversation is long.
LOW_WATER = 0.75


def history_budget(context: Context, system_tokens: int) -> int:
    """Tokens left for the history: the window minus the system prompt and room to answer."""
    reserve = min(context.context_tokens // 4, 2048)
    return max(context.context_tokens - system_tokens - reserve, 0)


def _window(messages: Sequence[BaseMessage], max_messages: int, max_tokens: int) -> int:
    """How many of the latest messages fit both limits, starting on a user message."""
    recent = list(messages[-max_messages:])
    kept = trim_messages(
        recent,
        max_tokens=max_tokens,
        token_counter=count_tokens_approximately,
        strategy="last",
        start_on="human",
        allow_partial=False,
    )
    # The latest message is the turn's question: it is always kept, however long it is.
    return max(len(kept), 1)


def split_history(
    messages: Sequence[BaseMessage], context: Context, budget: int
) -> tuple[list[BaseMessage], list[BaseMessage]]:
    """(to fold, to keep): nothing to fold while the history fits both limits."""
    fits = len(messages) <= context.max_history_messages and count_tokens(messages) <= budget
    if fits:
        return [], list(messages)
    keep = _window(
        messages,
        max(1, int(context.max_history_messages * LOW_WATER)),
        int(budget * LOW_WATER),
    )
    cut = len(messages) - keep
    return list(messages[:cut]), list(messages[cut:])


async def fold(
    context: Context, summary: str, folded: Sequence[BaseMessage]
) -> tuple[str, BaseMessage, list[BaseMessage]]:
    """One summary call folding `folded` into `summary`: (new summary, reply, prompt)."""
    llm = await chat_model(context)
    text = SUMMARY.render(
        summary=summary,
        transcript=transcript(folded, max_chars=context.context_tokens * 2),
    )
    prompt: list[BaseMessage] = [HumanMessage(content=text)]
    reply = await llm.ainvoke(prompt, config=QUIET)
    return text_of(reply).strip() or summary, reply, prompt


async def load_context(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Trim the history to its budgets, folding older turns into the running summary."""
    context = context_of(runtime)
    route = state.get("route", "direct")
    summary = state.get("summary", "")
    tools = offered_tools(context, route)
    system = system_message(context, route, summary, tools)
    # The bound tools' schemas take room in the window too.
    fixed = count_tokens_approximately(
        [system], tools=[spec.as_langchain_tool() for spec in tools] or None
    )
    budget = history_budget(context, fixed)
    folded, _kept = split_history(state["messages"], context, budget)
    if not folded:
        return {}
    new_summary, reply, prompt = await fold(context, summary, folded)
    usage: Usage = add_usage(state.get("usage"), reply, prompt)
    return {
        "summary": new_summary,
        "messages": [RemoveMessage(id=m.id) for m in folded if m.id is not None],
        "usage": usage,
    }
