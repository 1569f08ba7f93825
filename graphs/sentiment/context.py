"""Run dependencies of the sentiment graph (its `context_schema`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime
from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from graphs.assistant.context import DEFAULT_LLM_BASE_URL
from graphs.assistant.context import Context as AssistantContext

DEFAULT_GLOSSARY = Path(__file__).parent / "glossary.yaml"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name) or default


@dataclass(kw_only=True)
class Context:
    """The model, the glossary file and the batch limits of a sentiment run."""

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    user_id: str = "anonymous"
    model: str = field(default_factory=lambda: _env("MAI_LLM_MODEL"))
    llm_base_url: str = field(
        default_factory=lambda: _env("MAI_LLM_BASE_URL", DEFAULT_LLM_BASE_URL)
    )
    llm_api_key: str | None = field(default_factory=lambda: _env("MAI_LLM_API_KEY") or None)
    llm: Annotated[BaseChatModel | None, SkipJsonSchema()] = None
    glossary_path: str = field(
        default_factory=lambda: _env("MAI_SENTIMENT_GLOSSARY", str(DEFAULT_GLOSSARY))
    )
    max_texts: int = 50
    max_chars: int = 20_000

    def __post_init__(self) -> None:
        if self.max_texts < 1:
            raise ValueError("max_texts must be at least 1")
        if self.max_chars < 1:
            raise ValueError("max_chars must be at least 1")

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
