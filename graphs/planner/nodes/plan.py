"""The `begin` and `plan` nodes: start a request, ask the model for a `Plan`.

`begin` resets every per-request field (a thread can hold several requests). `plan` asks with
structured output and falls back to plain text; when `validate` sends the draft back it asks
once more, showing the model its previous answer and what was wrong with it.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

import prompts
from graphs.assistant.llm import chat_model
from graphs.assistant.messages import text_of
from graphs.planner.context import Context, context_of
from graphs.planner.state import Plan, PlannerState
from graphs.planner.tools import capabilities_of, describe
from graphs.structured import ask_structured, repair_messages

PLANNING = prompts.load("planning")


def latest_request(state: PlannerState) -> HumanMessage | None:
    """The last human message: the request being planned."""
    for message in reversed(state.get("messages", [])):
        if isinstance(message, HumanMessage):
            return message
    return None


def planning_messages(request: str, context: Context) -> list[BaseMessage]:
    """The planning prompt for `request`, listing the capabilities this run has."""
    agents = [
        {"name": name, "description": describe(capability)}
        for name, capability in capabilities_of(context).items()
    ]
    system = PLANNING.render(agents=agents, max_steps=context.max_steps)
    return [SystemMessage(content=system), HumanMessage(content=request)]


def begin(state: PlannerState) -> dict[str, Any]:
    """Start a request: clear the previous request's plan, results, answer and usage."""
    if latest_request(state) is None:
        raise ValueError("the planner needs a request: send at least one human message")
    return {
        "draft": None,
        "draft_text": "",
        "plan_error": None,
        "plan_attempts": 0,
        "revision": 0,
        "results": None,
        "usage": None,
        "answer": "",
        "citations": [],
        "status": "running",
    }


async def plan(state: PlannerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Draft the plan (or repair the previous draft) for the latest request."""
    context = context_of(runtime)
    request = latest_request(state)
    if request is None:
        raise ValueError("the planner needs a request: send at least one human message")
    messages = planning_messages(text_of(request), context)
    error = state.get("plan_error")
    if error is not None:
        messages = repair_messages(messages, state.get("draft_text", ""), error)
    llm = await chat_model(context.assistant_context())
    answer = await ask_structured(llm, Plan, messages)
    return {
        "draft": answer.value.model_dump() if answer.value is not None else None,
        "draft_text": answer.raw,
        "plan_error": answer.error,
        "plan_attempts": state.get("plan_attempts", 0) + 1,
        "usage": answer.usage,
    }
