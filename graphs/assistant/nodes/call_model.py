"""The `call_model` node: the answering model call, with the route's tools bound."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langgraph.runtime import Runtime

from graphs.assistant.context import Context, context_of
from graphs.assistant.llm import chat_model, with_sampling
from graphs.assistant.messages import add_usage, text_of
from graphs.assistant.prompting import system_message
from graphs.assistant.state import AssistantState
from graphs.assistant.toolset import offered_tools

# A server that fails mid-stream (llama.cpp: "The model produced output that does not match the
# expected peg-native format" when a small model botches a tool call) raises a bare APIError the
# client never retries; the output is sampled, so asking once more usually succeeds.
MALFORMED_OUTPUT_RETRIES = 1


async def _ask(
    model: Runnable[LanguageModelInput, BaseMessage], prompt: list[BaseMessage]
) -> BaseMessage:
    """The model's reply, asking again when the server reports an error mid-stream.

    HTTP and connection errors (APIStatusError, APIConnectionError) are the client's to retry
    (max_retries) and propagate at once.
    """
    # Here rather than at module level: openai is heavy and only a model call needs it.
    import openai

    for attempt in range(MALFORMED_OUTPUT_RETRIES + 1):
        try:
            return await model.ainvoke(prompt)
        except (openai.APIStatusError, openai.APIConnectionError):
            raise
        except openai.APIError:
            if attempt == MALFORMED_OUTPUT_RETRIES:
                raise
    raise AssertionError("unreachable: the loop returns or raises")


async def call_model(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the model for the answer or for tool calls; its tokens stream to "messages".

    Tools bound: every enabled tool for the "tools" route, kb_search for "knowledge", none for
    "direct". Usage comes from the response's usage_metadata, else a local estimate.
    A server error mid-stream (a malformed tool call) is asked again once; LLM errors
    (openai.APIConnectionError, APITimeoutError, APIStatusError, APIError) propagate.
    """
    context = context_of(runtime)
    route = state.get("route", "direct")
    tools = offered_tools(context, route)
    llm = with_sampling(await chat_model(context), context.llm_params)
    model = llm.bind_tools([spec.as_langchain_tool() for spec in tools]) if tools else llm
    prompt: list[BaseMessage] = [
        system_message(context, route, state.get("summary", ""), tools, state.get("memories", [])),
        *state["messages"],
    ]
    response = await _ask(model, prompt)
    if not isinstance(response, AIMessage):
        response = AIMessage(content=text_of(response), id=response.id)
    return {"messages": [response], "usage": add_usage(state.get("usage"), response, prompt)}
