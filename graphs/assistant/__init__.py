"""The MAI assistant: a LangGraph agent that routes, loads context, calls tools and answers.

`builder` (a StateGraph) and `graph` (compiled without a checkpointer) are what callers use;
the service compiles `builder.compile(checkpointer=...)` and passes a `Context` per run.
"""

from graphs.assistant.context import Context, Passage, Retriever, RetrieverUnavailable
from graphs.assistant.graph import builder, graph
from graphs.assistant.state import (
    AssistantState,
    Citation,
    InputState,
    OutputState,
    Route,
    ToolRun,
    Usage,
)

__all__ = [
    "AssistantState",
    "Citation",
    "Context",
    "InputState",
    "OutputState",
    "Passage",
    "Retriever",
    "RetrieverUnavailable",
    "Route",
    "ToolRun",
    "Usage",
    "builder",
    "graph",
]
