"""The sentiment graph: wiring and routers only.

    START -> prepare -(Send, one per text)-> analyze -> collect -> END

A batch of texts is analysed in parallel; `results` keeps the input order.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from graphs.sentiment.context import Context
from graphs.sentiment.nodes import analyze, collect, prepare
from graphs.sentiment.state import InputState, OutputState, SentimentState, TextTask


def each_text(state: SentimentState) -> list[Send]:
    """One `analyze` task per text of the batch."""
    tasks: list[TextTask] = [
        {"index": index, "text": text} for index, text in enumerate(state.get("batch", []))
    ]
    return [Send("analyze", task) for task in tasks]


builder = StateGraph(
    SentimentState, context_schema=Context, input_schema=InputState, output_schema=OutputState
)
builder.add_node("prepare", prepare)
builder.add_node("analyze", analyze, input_schema=TextTask)
builder.add_node("collect", collect)
builder.add_edge(START, "prepare")
builder.add_conditional_edges("prepare", each_text, ["analyze"])
builder.add_edge("analyze", "collect")
builder.add_edge("collect", END)

graph = builder.compile(name="sentiment")
