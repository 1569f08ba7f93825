"""Run dependencies of the moderation graph (its `context_schema`): model, thresholds, policy."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Literal

from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime
from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from graphs.assistant.context import DEFAULT_LLM_BASE_URL
from graphs.assistant.context import Context as AssistantContext

ErrorStrategy = Literal["fail_fast", "continue"]


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


def _float(name: str, default: float) -> float:
    raw = _env(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}: not a number: {raw!r}") from None


def _strategy() -> ErrorStrategy:
    raw = _env("MAI_MODERATION_ERROR_STRATEGY", "continue").lower()
    if raw == "fail_fast":
        return "fail_fast"
    if raw == "continue":
        return "continue"
    raise ValueError(f"MAI_MODERATION_ERROR_STRATEGY: use fail_fast or continue, not {raw!r}")


@dataclass(kw_only=True)
class Context:
    """The model, the verdict thresholds and the error strategy of a moderation run.

    The verdict is "block" when any toxicity score reaches `block_threshold`, "review" when one
    reaches `review_threshold` (or a stage failed under "continue"), else "allow".
    """

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    user_id: str = "anonymous"
    model: str = field(default_factory=lambda: _env("MAI_LLM_MODEL"))
    llm_base_url: str = field(
        default_factory=lambda: _env("MAI_LLM_BASE_URL", DEFAULT_LLM_BASE_URL)
    )
    llm_api_key: str | None = field(default_factory=lambda: _env("MAI_LLM_API_KEY") or None)
    llm: Annotated[BaseChatModel | None, SkipJsonSchema()] = None
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

    def model_context(self) -> AssistantContext:
        """The assistant context `chat_model` builds this run's model from."""
        return AssistantContext(
            user_id=self.user_id,
            model=self.model,
            llm_base_url=self.llm_base_url,
            llm_api_key=self.llm_api_key,
            llm=self.llm,
        )


def context_of(runtime: Runtime[Context]) -> Context:
    """The run's context, or the defaults when the caller passed none."""
    context = runtime.context
    return context if isinstance(context, Context) else Context()
