"""The moderation graph's state: the text, each stage's findings, the verdict, the masked text.

The reversible mapping from placeholders back to the original values (`mapping`) is private
state: it is checkpointed with the run (for whoever may read the thread's state) but never part
of the output.
"""

from __future__ import annotations

from typing import Annotated, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from graphs.assistant.state import Usage
from graphs.structured import add_up_usage

Stage = Literal["toxicity", "pii", "sanitize"]
STAGES: tuple[Stage, ...] = ("toxicity", "pii", "sanitize")
Verdict = Literal["allow", "review", "block"]
TOXICITY_CATEGORIES = ("toxicity", "insult", "threat", "harassment", "hate", "sexual", "self_harm")


class ToxicityScores(BaseModel):
    """The model's toxicity assessment: a score from 0 to 1 per category."""

    toxicity: float = Field(ge=0.0, le=1.0)
    insult: float = Field(default=0.0, ge=0.0, le=1.0)
    threat: float = Field(default=0.0, ge=0.0, le=1.0)
    harassment: float = Field(default=0.0, ge=0.0, le=1.0)
    hate: float = Field(default=0.0, ge=0.0, le=1.0)
    sexual: float = Field(default=0.0, ge=0.0, le=1.0)
    self_harm: float = Field(default=0.0, ge=0.0, le=1.0)
    rationale: str = ""


class NamedEntity(BaseModel):
    """A person's name or a postal address the model found, quoted exactly."""

    type: Literal["name", "address"]
    text: str = Field(min_length=1, max_length=500)


class Entities(BaseModel):
    """The model's answer for PII that no pattern finds."""

    entities: list[NamedEntity] = Field(default_factory=list)


class Finding(TypedDict):
    """One finding with its span in the input text."""

    stage: str
    type: str
    start: int
    end: int
    text: str
    score: float
    source: Literal["pattern", "model"]


class StageReport(TypedDict):
    """How a stage went (also recorded in the Prometheus metrics)."""

    stage: str
    outcome: Literal["ok", "error"]
    duration_ms: int
    error: str | None


def add_findings(left: list[Finding] | None, right: list[Finding] | None) -> list[Finding]:
    """Collect findings of the parallel stages; None (written by `prepare`) starts afresh."""
    return [] if right is None else [*(left or []), *right]


def add_reports(
    left: list[StageReport] | None, right: list[StageReport] | None
) -> list[StageReport]:
    """Collect stage reports; None (written by `prepare`) starts afresh."""
    return [] if right is None else [*(left or []), *right]


class InputState(TypedDict, total=False):
    """What a run takes: `text` (or the last human message) and optionally which `stages`."""

    text: str
    stages: list[Stage]
    messages: Annotated[list[AnyMessage], add_messages]


class ModerationState(InputState, total=False):
    """The whole state."""

    subject: str
    selected: list[Stage]
    toxicity: dict[str, float]
    findings: Annotated[list[Finding], add_findings]
    sanitized: str | None
    mapping: dict[str, str]
    reports: Annotated[list[StageReport], add_reports]
    verdict: Verdict
    reasons: list[str]
    usage: Annotated[Usage, add_up_usage]


class OutputState(TypedDict, total=False):
    """What a run returns: the verdict and why, findings with spans, the sanitized text."""

    verdict: Verdict
    reasons: list[str]
    toxicity: dict[str, float]
    findings: Annotated[list[Finding], add_findings]
    sanitized: str | None
    reports: Annotated[list[StageReport], add_reports]
    usage: Annotated[Usage, add_up_usage]
