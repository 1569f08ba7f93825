"""The sentiment graph's state: the text(s) in, one validated result per text out."""

from __future__ import annotations

from typing import Annotated, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from graphs.assistant.state import Usage
from graphs.structured import add_up_usage

Label = Literal["positive", "negative", "neutral", "mixed"]


class Aspect(BaseModel):
    """One thing the text talks about, with its own sentiment."""

    aspect: str = Field(min_length=1, max_length=200)
    label: Label
    score: float = Field(ge=-1.0, le=1.0)


class SentimentResult(BaseModel):
    """The validated analysis of one text. `score` runs from -1 (negative) to 1 (positive)."""

    label: Label
    score: float = Field(ge=-1.0, le=1.0)
    aspects: list[Aspect] = Field(default_factory=list)
    rationale: str = Field(min_length=1, max_length=2000)


class GlossaryHit(TypedDict):
    """A domain term found in the text and what it means."""

    term: str
    meaning: str


class Analysis(TypedDict):
    """One text's result as kept in state and returned (JSON)."""

    index: int
    text: str
    label: Label
    score: float
    aspects: list[dict[str, object]]
    rationale: str
    glossary: list[GlossaryHit]


def add_analyses(left: list[Analysis] | None, right: list[Analysis] | None) -> list[Analysis]:
    """Collect the parallel analyses; None (written by `prepare`) starts a new batch."""
    if right is None:
        return []
    return [*(left or []), *right]


class InputState(TypedDict, total=False):
    """What a run takes: `text`, or `texts` for a batch, or messages (the last human one)."""

    text: str
    texts: list[str]
    messages: Annotated[list[AnyMessage], add_messages]


class SentimentState(InputState, total=False):
    """The whole state."""

    batch: list[str]
    analyses: Annotated[list[Analysis], add_analyses]
    results: list[Analysis]
    result: Analysis | None
    usage: Annotated[Usage, add_up_usage]


class OutputState(TypedDict, total=False):
    """What a run returns: every result in input order, and `result` for a single text."""

    results: list[Analysis]
    result: Analysis | None
    usage: Annotated[Usage, add_up_usage]


class TextTask(TypedDict):
    """The input of one `analyze` task (sent with `Send`)."""

    index: int
    text: str
