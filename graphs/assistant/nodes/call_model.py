"""The `call_model` node: the answering model call, with the route's tools bound."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.runtime import Runtime

from graphs.assistant.context import Context, context_of
from graphs.assistant.llm import chat_model
from graphs.assistant.messages import add_usage, text_of
from graphs.assistant.prompting import system_message
from graphs.assistant.state import AssistantState
from graphs.assistant.toolset import offered_tools


async def call_model(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the model for the answer or for tool calls; its tokens stream to "messages".

    Tools bound: every enabled tool for the "tools" route, kb_search for "knowledge", none for
    "direct". Usage comes from the response's usage_metadata, else a local estimate.
    LLM errors (openai.APIConnectionError, APITimeoutError, APIStatusError) propagate.
    """
    context = context_of(runtime)
    route = state.get("route", "direct")
    tools = offered_tools(context, route)
    llm = await chat_model(context)
    model = llm.bind_tools([spec.as_langchain_tool() for spec in tools]) if tools else llm
    prompt: list[BaseMessage] = [
        system_message(context, route, state.get("summary", ""), tools),
        *state["messages"],
    ]
    response = await model.ainvoke(prompt)
    if not isinstance(response, AIMessage):
        response = AIMessage(content=text_of(response), id=response.id)
    return {"messages": [response], "usage": add_usage(state.get("usage"), response, prompt)}
