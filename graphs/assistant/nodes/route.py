"""The `route` node: classifies the turn as direct, tools or knowledge, and starts the turn."""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import Runtime
from pydantic import BaseModel

import prompts
from graphs.assistant.context import Context, context_of
from graphs.assistant.llm import chat_model
from graphs.assistant.messages import add_usage, text_of, transcript
from graphs.assistant.prompting import tool_lines
from graphs.assistant.state import ROUTES, AssistantState, Route, Usage, no_usage
from graphs.assistant.toolset import usable_tools

ROUTING = prompts.load("routing")
# The route call is internal: tagged so its tokens never reach the "messages" stream.
QUIET: RunnableConfig = {"tags": [TAG_NOSTREAM]}
FALLBACK_ROUTE: Route = "tools"
HISTORY_MESSAGES = 6
_WORD = re.compile(r"\b(direct|tools?|knowledge)\b", re.IGNORECASE)


class RouteDecision(BaseModel):
    """The router's structured answer."""

    route: Route


# The schema as JSON rather than the class: given a class, the OpenAI client parses the reply
# into an instance inside its own response object and pydantic then warns, on every streamed
# turn, that it cannot serialise that field ("Expected `none`"). Given a schema, it parses to
# a dict, which `_structured` validates below.
ROUTE_SCHEMA: dict[str, Any] = RouteDecision.model_json_schema()


def classify_text(text: str) -> Route:
    """The route named in a plain-text reply (JSON or a word), else the tools route.

    "tools" is the fallback because it can still answer directly and offers every tool.
    """
    stripped = text.strip().strip("`").removeprefix("json").strip()
    try:
        data = json.loads(stripped)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("route") in ROUTES:
        route: Route = data["route"]
        return route
    match = _WORD.search(text)
    if match is None:
        return FALLBACK_ROUTE
    word = match.group(1).lower()
    if word == "direct":
        return "direct"
    if word == "knowledge":
        return "knowledge"
    return "tools"


def _prompt(state: AssistantState, context: Context, output: str) -> list[BaseMessage]:
    messages = state["messages"]
    question = text_of(messages[-1]) if messages else ""
    history = transcript(messages[-HISTORY_MESSAGES:-1], max_chars=3000)
    system = ROUTING.render(
        tools=tool_lines(usable_tools(context)),
        knowledge_available=context.retriever is not None,
        history=history,
        output=output,
    )
    return [SystemMessage(content=system), HumanMessage(content=question)]


async def _structured(
    llm: BaseChatModel, state: AssistantState, context: Context
) -> tuple[Route, Usage]:
    # Here rather than at module level: openai is heavy and only a model call needs it.
    import openai

    prompt = _prompt(state, context, "json")
    try:
        router = llm.with_structured_output(ROUTE_SCHEMA, include_raw=True)
    except NotImplementedError:
        return await _plain(llm, state, context)
    try:
        result: Any = await router.ainvoke(prompt, config=QUIET)
    except NotImplementedError:
        return await _plain(llm, state, context)
    except openai.BadRequestError:
        # Servers without response_format / tool support reject the call: ask in plain text.
        return await _plain(llm, state, context)
    raw = result.get("raw") if isinstance(result, dict) else None
    usage = add_usage(None, raw, prompt) if isinstance(raw, BaseMessage) else no_usage()
    parsed = result.get("parsed") if isinstance(result, dict) else result
    if isinstance(parsed, RouteDecision):
        return parsed.route, usage
    if isinstance(parsed, dict) and parsed.get("route") in ROUTES:
        route: Route = parsed["route"]
        return route, usage
    if isinstance(raw, AIMessage):
        for call in raw.tool_calls:
            if call["args"].get("route") in ROUTES:
                from_call: Route = call["args"]["route"]
                return from_call, usage
        return classify_text(text_of(raw)), usage
    return FALLBACK_ROUTE, usage


async def _plain(
    llm: BaseChatModel, state: AssistantState, context: Context
) -> tuple[Route, Usage]:
    prompt = _prompt(state, context, "word")
    reply = await llm.ainvoke(prompt, config=QUIET)
    return classify_text(text_of(reply)), add_usage(None, reply, prompt)


async def route(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Start the turn: reset the per-turn fields and classify the latest message.

    One structured-output call (`RouteDecision`, include_raw) tagged nostream; when the model
    has no structured output (NotImplementedError, or a server that rejects it) or its output
    does not parse, the route is read from the plain text instead.
    """
    context = context_of(runtime)
    llm = await chat_model(context)
    chosen, usage = await _structured(llm, state, context)
    return {
        "route": chosen,
        "iterations": 0,
        "tool_runs": [],
        "citations": [],
        "citation_support": None,
        "passages": [],
        "answer": "",
        "usage": usage,
    }
