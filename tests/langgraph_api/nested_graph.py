"""A graph with a subgraph, served only by the LangGraph API tests (`MAI_GRAPHS_FILE`), so
`stream_subgraphs` and `/assistants/{id}/subgraphs` have namespaces to show."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    """The steps taken, in order."""

    steps: Annotated[list[str], operator.add]


def outer(state: State) -> dict[str, list[str]]:
    """The parent's own step."""
    return {"steps": ["outer"]}


def inner(state: State) -> dict[str, list[str]]:
    """The subgraph's step."""
    return {"steps": ["inner"]}


child_builder = StateGraph(State)
child_builder.add_node("inner", inner)
child_builder.add_edge(START, "inner")
child_builder.add_edge("inner", END)

builder = StateGraph(State)
builder.add_node("outer", outer)
builder.add_node("child", child_builder.compile())
builder.add_edge(START, "outer")
builder.add_edge("outer", "child")
builder.add_edge("child", END)
graph = builder.compile()
