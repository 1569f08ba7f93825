"""Run dependencies (the graph's `context_schema`): who asks, which model, limits, services.

The context is never checkpointed: the service passes a fresh one with each run. Without one
(LangGraph Studio), the defaults apply and the model settings come from the MAI_LLM_* variables.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime
from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from graphs.knowledge import Passage, PassageBook, Retriever, RetrieverUnavailable
from graphs.memory import MemoryOptions
from graphs.tools import ToolLedger, ToolRegistry

__all__ = [
    "Context",
    "Passage",
    "PassageBook",
    "Retriever",
    "RetrieverUnavailable",
    "context_of",
]

DEFAULT_LLM_BASE_URL = "http://localhost:1234/v1"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


def _env_names(name: str) -> frozenset[str] | None:
    names = frozenset(part.strip() for part in _env(name).split(",") if part.strip())
    return names or None


@dataclass(kw_only=True)
class Context:
    """Everything a run needs besides its state.

    `llm`, `retriever` and `tools` are live objects passed in-process (hidden from the JSON
    schema LangGraph Studio shows); everything else can be set from Studio or the API.
    """

    # Lets pydantic (LangGraph's schema endpoints) accept the live-object fields.
    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    user_id: str = "anonymous"
    conversation_id: str | None = None
    run_id: str | None = None
    model: str = field(default_factory=lambda: _env("MAI_LLM_MODEL"))
    llm_base_url: str = field(
        default_factory=lambda: _env("MAI_LLM_BASE_URL", DEFAULT_LLM_BASE_URL)
    )
    llm_api_key: str | None = field(default_factory=lambda: _env("MAI_LLM_API_KEY") or None)
    llm: Annotated[BaseChatModel | None, SkipJsonSchema()] = None
    # The same limits the service's model uses (MAI_LLM_TIMEOUT_SECONDS, MAI_LLM_MAX_RETRIES).
    llm_timeout_seconds: float = field(
        default_factory=lambda: float(_env("MAI_LLM_TIMEOUT_SECONDS", "120"))
    )
    llm_max_retries: int = field(default_factory=lambda: int(_env("MAI_LLM_MAX_RETRIES", "2")))
    # Sampling settings a client chose for this run's answer (temperature, top_p, max_tokens,
    # stop), as the OpenAI-compatible API passes them; applied to the answering call only, so
    # routing and summaries keep working with a small max_tokens.
    llm_params: dict[str, Any] = field(default_factory=dict)
    # Side-effecting tool calls are recorded here by call id, so a re-run does not act twice.
    tool_ledger: Annotated[ToolLedger | None, SkipJsonSchema()] = None
    max_tool_iterations: int = 8
    tool_timeout_seconds: float = 30.0
    context_tokens: int = 8192
    max_history_messages: int = 50
    # The running summary's cap: a summary over it is summarised again, then cut to fit.
    summary_max_tokens: int = field(
        default_factory=lambda: int(_env("MAI_SUMMARY_MAX_TOKENS", "1000"))
    )
    top_k: int = 5
    retriever: Annotated[Retriever | None, SkipJsonSchema()] = None
    tools: Annotated[ToolRegistry | None, SkipJsonSchema()] = None
    # Human approval: tool names that need a person's approval whatever their flag
    # (`required`, wins) or never need it (`exempt`); None leaves each tool's flag in charge.
    approval_required: frozenset[str] | None = field(
        default_factory=lambda: _env_names("MAI_APPROVAL_REQUIRED_TOOLS")
    )
    approval_exempt: frozenset[str] | None = field(
        default_factory=lambda: _env_names("MAI_APPROVAL_EXEMPT_TOOLS")
    )
    approval_timeout_seconds: float = field(
        default_factory=lambda: float(_env("MAI_APPROVAL_TIMEOUT_SECONDS", "86400"))
    )
    # Long-term memory: recall before answering, extraction after (the store comes from
    # `Runtime.store`; without a store, memory is off whatever these say).
    memory: MemoryOptions = field(default_factory=MemoryOptions)
    # The clock stamping approval requests (the service passes its own; tests a frozen one).
    clock: Annotated[Callable[[], datetime] | None, SkipJsonSchema()] = None

    def __post_init__(self) -> None:
        if self.max_tool_iterations < 0:
            raise ValueError("max_tool_iterations must not be negative")
        if self.max_history_messages < 1:
            raise ValueError("max_history_messages must be at least 1")
        if self.summary_max_tokens < 50:
            raise ValueError("summary_max_tokens must be at least 50")
        if self.context_tokens < 256:
            raise ValueError("context_tokens must be at least 256")
        if self.tool_timeout_seconds <= 0:
            raise ValueError("tool_timeout_seconds must be positive")
        if self.approval_timeout_seconds <= 0:
            raise ValueError("approval_timeout_seconds must be positive")

    def now(self) -> datetime:
        """The current time by the run's clock (UTC)."""
        return self.clock() if self.clock is not None else datetime.now(UTC)


def context_of(runtime: Runtime[Context]) -> Context:
    """The run's context, or the defaults when the caller passed none."""
    context = runtime.context
    return context if isinstance(context, Context) else Context()
