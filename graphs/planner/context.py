"""Run dependencies of the planner (its `context_schema`): model, policies, capabilities.

Like the assistant's context it is never checkpointed; without one (LangGraph Studio) the
defaults apply, read from the MAI_PLANNER_* and MAI_LLM_* variables.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Literal

from langgraph.runtime import Runtime
from pydantic.json_schema import SkipJsonSchema

from graphs.assistant.context import Context as AssistantContext
from graphs.knowledge import Retriever
from graphs.model_choice import ModelChoice, env
from graphs.planner.state import StepData, StepOutput, StepResult
from graphs.tools import ToolRegistry

ApprovalMode = Literal["always", "never", "auto"]
FailurePolicy = Literal["fail_fast", "continue", "retry"]
APPROVAL_MODES: tuple[ApprovalMode, ...] = ("always", "never", "auto")
FAILURE_POLICIES: tuple[FailurePolicy, ...] = ("fail_fast", "continue", "retry")
INPUT_CHARS = 4000


def _env_float(name: str, default: float) -> float:
    raw = env(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}: not a number: {raw!r}") from None


def _approval_mode() -> ApprovalMode:
    raw = env("MAI_PLANNER_APPROVAL", "auto").lower()
    for mode in APPROVAL_MODES:
        if raw == mode:
            return mode
    raise ValueError(f"MAI_PLANNER_APPROVAL: use one of {', '.join(APPROVAL_MODES)}, not {raw!r}")


def _failure_policy() -> FailurePolicy:
    raw = env("MAI_PLANNER_FAILURE_POLICY", "continue").lower()
    for policy in FAILURE_POLICIES:
        if raw == policy:
            return policy
    raise ValueError(
        f"MAI_PLANNER_FAILURE_POLICY: use one of {', '.join(FAILURE_POLICIES)}, not {raw!r}"
    )


@dataclass(kw_only=True)
class Context(ModelChoice):
    """Everything a planner run needs besides its state.

    `capabilities` adds or replaces what a step's `agent` can name (a callable per name, see
    `graphs.planner.tools`); `llm`, `retriever`, `tools` and `capabilities` are live objects
    passed in-process and hidden from the JSON schema Studio shows.
    """

    conversation_id: str | None = None
    run_id: str | None = None
    retriever: Annotated[Retriever | None, SkipJsonSchema()] = None
    tools: Annotated[ToolRegistry | None, SkipJsonSchema()] = None
    capabilities: Annotated[
        Mapping[str, Callable[[StepCall], Awaitable[StepOutput]]] | None, SkipJsonSchema()
    ] = None
    top_k: int = 5
    max_steps: int = 8
    # Plan approval: always, never, or "auto" (the model asks for it, a step names an
    # approval-gated tool, or the estimated cost is above approval_cost_usd).
    approval: ApprovalMode = field(default_factory=_approval_mode)
    approval_cost_usd: float = field(
        default_factory=lambda: _env_float("MAI_PLANNER_APPROVAL_COST_USD", 0.05)
    )
    step_cost_usd: float = field(
        default_factory=lambda: _env_float("MAI_PLANNER_STEP_COST_USD", 0.01)
    )
    approval_timeout_seconds: float = field(
        default_factory=lambda: _env_float("MAI_APPROVAL_TIMEOUT_SECONDS", 86_400.0)
    )
    failure_policy: FailurePolicy = field(default_factory=_failure_policy)
    max_attempts: int = field(
        default_factory=lambda: int(_env_float("MAI_PLANNER_MAX_ATTEMPTS", 3))
    )
    step_timeout_seconds: float = field(
        default_factory=lambda: _env_float("MAI_PLANNER_STEP_TIMEOUT_SECONDS", 120.0)
    )
    clock: Annotated[Callable[[], datetime] | None, SkipJsonSchema()] = None

    def __post_init__(self) -> None:
        if self.approval not in APPROVAL_MODES:
            raise ValueError(f"approval must be one of {', '.join(APPROVAL_MODES)}")
        if self.failure_policy not in FAILURE_POLICIES:
            raise ValueError(f"failure_policy must be one of {', '.join(FAILURE_POLICIES)}")
        if self.max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.step_timeout_seconds <= 0:
            raise ValueError("step_timeout_seconds must be positive")
        if self.approval_cost_usd < 0 or self.step_cost_usd < 0:
            raise ValueError("costs must not be negative")

    def now(self) -> datetime:
        """The current time by the run's clock (UTC)."""
        return self.clock() if self.clock is not None else datetime.now(UTC)

    def assistant_context(self) -> AssistantContext:
        """The context an `assistant` step (and the planner's own model calls) runs with."""
        return AssistantContext(
            user_id=self.user_id,
            conversation_id=self.conversation_id,
            run_id=self.run_id,
            model=self.model,
            llm_base_url=self.llm_base_url,
            llm_api_key=self.llm_api_key,
            llm=self.llm,
            retriever=self.retriever,
            tools=self.tools,
            top_k=self.top_k,
            tool_timeout_seconds=self.step_timeout_seconds,
            approval_timeout_seconds=self.approval_timeout_seconds,
            clock=self.clock,
        )


@dataclass(frozen=True, slots=True)
class StepCall:
    """What a capability gets: the step, the results of the steps it depends on, the context."""

    step: StepData
    inputs: list[StepResult]
    context: Context

    def prompt(self) -> str:
        """The instruction followed by the results it depends on, as text for a model."""
        if not self.inputs:
            return self.step["instruction"]
        parts = [self.step["instruction"], "", "Results of earlier steps:"]
        for result in self.inputs:
            text = result["text"]
            if len(text) > INPUT_CHARS:
                text = text[:INPUT_CHARS].rstrip() + "…"
            parts.append(f"[{result['step_id']} ({result['agent']})]\n{text}")
        return "\n".join(parts)

    def subject(self) -> str:
        """The text an analysis step works on: its inputs' text, else its instruction."""
        texts = [result["text"] for result in self.inputs if result["text"].strip()]
        return "\n\n".join(texts) if texts else self.step["instruction"]


def context_of(runtime: Runtime[Context]) -> Context:
    """The run's context, or the defaults when the caller passed none."""
    context = runtime.context
    return context if isinstance(context, Context) else Context()
