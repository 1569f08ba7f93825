"""The `load_context` node: keeps the history within the message and token budgets.

The model sees the system prompt (from `prompts/`, rendered by `call_model`), the running
summary, and the most recent messages. When the history grows past `max_history_messages` or
the token budget, the oldest turns are folded into `summary` with one model call (tagged
nostream) and removed from the state with RemoveMessage, so checkpoints stay small too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, RemoveMessage, ToolMessage
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


def summary_tokens(summary: str) -> int:
    """The summary's size in the same approximate tokens the history budget uses."""
    return count_tokens_approximately([HumanMessage(content=summary)]) if summary else 0


def cut_to_tokens(summary: str, max_tokens: int) -> str:
    """The start of `summary` that fits `max_tokens`, ending on a whole word."""
    if summary_tokens(summary) <= max_tokens:
        return summary
    # count_tokens_approximately counts about four characters a token, plus a few per message.
    limit = max(max_tokens * 4 - 16, 0)
    cut = summary[:limit].rsplit(None, 1)[0] if " " in summary[:limit] else summary[:limit]
    return cut.rstrip() + " …"


async def capped(
    context: Context, summary: str
) -> tuple[str, list[tuple[BaseMessage, list[BaseMessage]]]]:
    """Keep the summary within `summary_max_tokens`: one more summary call over the summary
    itself when it is too long, and a cut if the model still did not shorten it (a model that
    does not compress would otherwise grow it every fold). Returns the calls made for usage."""
    cap = context.summary_max_tokens
    if summary_tokens(summary) <= cap:
        return summary, []
    llm = await chat_model(context)
    prompt: list[BaseMessage] = [
        HumanMessage(content=SUMMARY.render(summary="", transcript=summary))
    ]
    reply = await llm.ainvoke(prompt, config=QUIET)
    shorter = text_of(reply).strip() or summary
    return cut_to_tokens(shorter, cap), [(reply, prompt)]


INTERRUPTED_STEP = "(This step was interrupted before its tool calls ran.)"


def repair_unanswered_tool_calls(messages: Sequence[BaseMessage]) -> list[AIMessage]:
    """Replacements for earlier AI messages whose tool calls never got a result.

    A turn that failed or was stopped mid-tool leaves such a message in the checkpoint, and
    OpenAI-compatible servers reject a history where a tool call has no tool message. Each
    replacement keeps the message id (so add_messages swaps it in place) and only the answered
    calls.
    """
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    repairs: list[AIMessage] = []
    for message in messages[:-1]:  # the last message is this turn's question
        if not isinstance(message, AIMessage) or not message.tool_calls:
            continue
        kept = [call for call in message.tool_calls if call.get("id") in answered]
        if len(kept) == len(message.tool_calls):
            continue
        repairs.append(
            message.model_copy(
                update={
                    "tool_calls": kept,
                    "invalid_tool_calls": [],
                    "content": message.content or INTERRUPTED_STEP,
                    "additional_kwargs": {},
                }
            )
        )
    return repairs


async def load_context(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Repair interrupted tool calls, then fold older turns into the summary to fit budgets."""
    repairs = repair_unanswered_tool_calls(state["messages"])
    if repairs:
        replaced = {m.id: m for m in repairs}
        state = {**state, "messages": [replaced.get(m.id, m) for m in state["messages"]]}
    update = await _fit_history(state, runtime)
    if repairs:
        removed = {m.id for m in update.get("messages", []) if isinstance(m, RemoveMessage)}
        kept_repairs = [m for m in repairs if m.id not in removed]
        update["messages"] = [*kept_repairs, *update.get("messages", [])]
    return update


async def _fit_history(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    context = context_of(runtime)
    route = state.get("route", "direct")
    summary = state.get("summary", "")
    tools = offered_tools(context, route)
    system = system_message(context, route, summary, tools, state.get("memories", []))
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
    new_summary, calls = await capped(context, new_summary)
    for extra_reply, extra_prompt in calls:
        usage = add_usage(usage, extra_reply, extra_prompt)
    return {
        "summary": new_summary,
        "messages": [RemoveMessage(id=m.id) for m in folded if m.id is not None],
        "usage": usage,
    }
