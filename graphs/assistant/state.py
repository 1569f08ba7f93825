"""The assistant graph's state: the conversation, its running summary, and this turn's results."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from graphs.knowledge import Passage

Route = Literal["direct", "tools", "knowledge"]
ROUTES: tuple[Route, ...] = ("direct", "tools", "knowledge")
ToolRunStatus = Literal["ok", "error", "timeout", "rejected"]


class ToolRun(TypedDict):
    """One tool call of this turn: what was asked, what came back, how long it took."""

    id: str
    name: str
    args: dict[str, Any]
    result: str
    duration_ms: int
    status: ToolRunStatus


class Citation(TypedDict):
    """A knowledge-base passage the answer cites as [number]."""

    number: int
    document_id: str
    title: str
    page: int | None
    snippet: str
    score: float
    # The collection of the cited document (see Passage.collection); None outside any.
    collection: str | None
    # Whether a sentence citing it shares enough words with the passage (citation_check).
    supported: NotRequired[bool]


class UsedMemory(TypedDict):
    """A long-term memory recalled into this turn's system prompt."""

    id: str
    content: str
    kind: str
    importance: float
    score: float


class Usage(TypedDict):
    """Tokens used by this turn, summed over every model call (estimated when unreported)."""

    input_tokens: int
    output_tokens: int


class InputState(TypedDict):
    """What a turn takes: the new message(s), usually one HumanMessage."""

    messages: Annotated[list[AnyMessage], add_messages]


class AssistantState(InputState, total=False):
    """The whole state. Everything after `route` is reset by the first node of each turn."""

    summary: str
    route: Route
    iterations: int
    tool_runs: list[ToolRun]
    citations: list[Citation]
    # Share of this answer's citations backed by their passage; None when it cites nothing.
    citation_support: float | None
    passages: list[Passage]
    usage: Usage
    answer: str
    memories: list[UsedMemory]
    # Tokens of the memory step (after the answer), metered apart from the answer's.
    memory_usage: Usage


class OutputState(TypedDict, total=False):
    """What a turn returns (`ainvoke` result and the "values" stream)."""

    messages: Annotated[list[AnyMessage], add_messages]
    summary: str
    route: Route
    tool_runs: list[ToolRun]
    citations: list[Citation]
    citation_support: float | None
    usage: Usage
    answer: str
    memories: list[UsedMemory]
    memory_usage: Usage


def no_usage() -> Usage:
    """Zero tokens."""
    return {"input_tokens": 0, "output_tokens": 0}
