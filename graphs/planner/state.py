"""The planner graph's state: the request, the plan, one result per step, the answer.

`results` is merged step by step (each `run_step` task writes its own entry), which is what
makes a resume after a crash or a pause skip the steps that already finished: their writes are
in the checkpoint.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field, field_validator
from typing_extensions import TypedDict

from graphs.assistant.state import Citation, Usage
from graphs.structured import add_up_usage

AGENTS: tuple[str, ...] = ("assistant", "knowledge", "web_search", "sentiment", "moderation")
StepStatus = Literal["ok", "error", "timeout", "skipped"]
RunStatus = Literal["running", "completed", "partial", "failed", "rejected"]
_STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class PlanStep(BaseModel):
    """One step of a plan: which capability does what, after which other steps."""

    id: str = Field(description="Short unique id, e.g. s1")
    agent: str = Field(description="The capability that runs the step")
    instruction: str = Field(min_length=1, max_length=4000)
    depends_on: list[str] = Field(default_factory=list)
    tools: list[str] = Field(
        default_factory=list, description="Tools the step expects to call (assistant steps)"
    )

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _STEP_ID.match(value):
            raise ValueError("a step id is 1-40 letters, digits, '-' or '_'")
        return value


class Plan(BaseModel):
    """A plan: a DAG of steps. `estimated_cost_usd` is set by `validate`, not by the model."""

    steps: list[PlanStep] = Field(min_length=1)
    requires_approval: bool = False
    estimated_cost_usd: float = 0.0
    rationale: str = ""


class StepData(TypedDict):
    """A plan step as kept in state (JSON)."""

    id: str
    agent: str
    instruction: str
    depends_on: list[str]
    tools: list[str]


class PlanData(TypedDict):
    """A plan as kept in state and shown to the approver (JSON)."""

    steps: list[StepData]
    requires_approval: bool
    estimated_cost_usd: float
    rationale: str


class StepResult(TypedDict):
    """What one step produced. `text` cites knowledge passages as [n] of its own `citations`."""

    step_id: str
    agent: str
    status: StepStatus
    text: str
    citations: list[Citation]
    data: dict[str, Any]
    error: str | None
    attempts: int
    duration_ms: int


class StepOutput(TypedDict):
    """What a capability returns; `text` cites `citations` as [n] (numbered from 1)."""

    text: str
    citations: list[Citation]
    data: dict[str, Any]
    usage: Usage


class Approval(TypedDict):
    """How the plan was approved (or not)."""

    approval_id: str | None
    decision: Literal["not_required", "approved", "rejected", "modified"]
    reason: str | None


def merge_results(
    left: dict[str, StepResult] | None, right: dict[str, StepResult] | None
) -> dict[str, StepResult]:
    """Add step results; None (written by `plan` at the start of a request) clears them."""
    if right is None:
        return {}
    return {**(left or {}), **right}


class InputState(TypedDict):
    """What a run takes: the request as message(s), usually one HumanMessage."""

    messages: Annotated[list[AnyMessage], add_messages]


class PlannerState(InputState, total=False):
    """The whole state; everything but `messages` is reset when a new request starts."""

    draft: dict[str, Any] | None
    draft_text: str
    plan_error: str | None
    plan_attempts: int
    revision: int
    plan: PlanData
    approval: Approval
    results: Annotated[dict[str, StepResult], merge_results]
    status: RunStatus
    answer: str
    citations: list[Citation]
    usage: Annotated[Usage, add_up_usage]


class OutputState(TypedDict, total=False):
    """What a run returns (`ainvoke` result and the "values" stream)."""

    messages: Annotated[list[AnyMessage], add_messages]
    plan: PlanData
    approval: Approval
    results: Annotated[dict[str, StepResult], merge_results]
    status: RunStatus
    answer: str
    citations: list[Citation]
    usage: Annotated[Usage, add_up_usage]


class StepTask(TypedDict):
    """The input of one `run_step` task (sent with `Send`): the step and its inputs."""

    step: StepData
    inputs: list[StepResult]
