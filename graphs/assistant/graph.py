"""The assistant graph: wiring and routers only (the nodes live in `nodes/`).

    START -> route -> recall_memories -> load_context -(knowledge)-> retrieve -> call_model
                                                    \\-(direct, tools)----------> call_model
    call_model -(tool calls, under the cap)-> tools -> call_model
               \\-(answer, or cap reached)-> synthesize -> update_memories -> END

`update_memories` runs after the answer is complete (its tokens have streamed), so the memory
step never delays the answer; nodes reach the long-term memory store through `Runtime.store`.

`builder` is exported for callers that compile with their own checkpointer (the service, tests);
`graph` is compiled without one, for `langgraph.json` (the LangGraph server brings its own).
"""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import AIMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from graphs.assistant.context import Context, context_of
from graphs.assistant.nodes import (
    call_model,
    load_context,
    recall_memories,
    retrieve,
    route,
    synthesize,
    tools,
    update_memories,
)
from graphs.assistant.state import AssistantState, InputState, OutputState


def after_model(state: AssistantState, runtime: Runtime[Context]) -> Literal["tools", "synthesize"]:
    """Run the requested tools while under the iteration cap; otherwise finish the turn."""
    last = state["messages"][-1]
    wants_tools = isinstance(last, AIMessage) and bool(last.tool_calls)
    if wants_tools and state.get("iterations", 0) < context_of(runtime).max_tool_iterations:
        return "tools"
    return "synthesize"


def after_context(state: AssistantState) -> Literal["retrieve", "call_model"]:
    """A knowledge turn searches the knowledge base before the model answers."""
    return "retrieve" if state.get("route") == "knowledge" else "call_model"


builder = StateGraph(
    AssistantState, context_schema=Context, input_schema=InputState, output_schema=OutputState
)
builder.add_node("route", route)
builder.add_node("recall_memories", recall_memories)
builder.add_node("load_context", load_context)
builder.add_node("retrieve", retrieve)
builder.add_node("call_model", call_model)
builder.add_node("tools", tools)
builder.add_node("synthesize", synthesize)
builder.add_node("update_memories", update_memories)
builder.add_edge(START, "route")
builder.add_edge("route", "recall_memories")
builder.add_edge("recall_memories", "load_context")
builder.add_conditional_edges("load_context", after_context)
builder.add_edge("retrieve", "call_model")
builder.add_conditional_edges("call_model", after_model)
builder.add_edge("tools", "call_model")
builder.add_edge("synthesize", "update_memories")
builder.add_edge("update_memories", END)

graph = builder.compile(name="assistant")
