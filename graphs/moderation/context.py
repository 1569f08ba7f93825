"""Run dependencies of the moderation graph (its `context_schema`): model, thresholds, policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from langgraph.runtime import Runtime

from graphs.model_choice import ModelChoice, env

ErrorStrategy = Literal["fail_fast", "continue"]


def _float(name: str, default: float) -> float:
    raw = env(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}: not a number: {raw!r}") from None


def _strategy() -> ErrorStrategy:
    raw = env("MAI_MODERATION_ERROR_STRATEGY", "continue").lower()
    if raw == "fail_fast":
        return "fail_fast"
    if raw == "continue":
        return "continue"
    raise ValueError(f"MAI_MODERATION_ERROR_STRATEGY: use fail_fast or continue, not {raw!r}")


@dataclass(kw_only=True)
class Context(ModelChoice):
    """The model, the verdict thresholds and the error strategy of a moderation run.

    The verdict is "block" when any toxicity score reaches `block_threshold`, "review" when one
    reaches `review_threshold` (or a stage failed under "continue"), else "allow".
    """

    block_threshold: float = field(
        default_factory=lambda: _float("MAI_MODERATION_BLOCK_THRESHOLD", 0.8)
    )
    review_threshold: float = field(
        default_factory=lambda: _float("MAI_MODERATION_REVIEW_THRESHOLD", 0.5)
    )
    error_strategy: ErrorStrategy = field(default_factory=_strategy)
    # The model finds names and addresses; off, PII detection is patterns only (no model call).
    model_pii: bool = True
    max_chars: int = 20_000

    def __post_init__(self) -> None:
        if not 0 <= self.review_threshold <= self.block_threshold <= 1:
            raise ValueError(
                "thresholds must satisfy 0 <= review_threshold <= block_threshold <= 1"
            )
        if self.error_strategy not in ("fail_fast", "continue"):
            raise ValueError("error_strategy must be fail_fast or continue")


def context_of(runtime: Runtime[Context]) -> Context:
    """The run's context, or the defaults when the caller passed none."""
    context = runtime.context
    return context if isinstance(context, Context) else Context()
