"""The chat-model fields every graph's context shares, and the assistant context they build."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated

from langchain_core.language_models import BaseChatModel
from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from graphs.assistant.context import DEFAULT_LLM_BASE_URL
from graphs.assistant.context import Context as AssistantContext


def env(name: str, default: str = "") -> str:
    """An environment variable; an empty value counts as unset."""
    return os.environ.get(name) or default


@dataclass(kw_only=True)
class ModelChoice:
    """Who runs the graph and which chat model it talks to (`llm`: a live model, in-process)."""

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    user_id: str = "anonymous"
    model: str = field(default_factory=lambda: env("MAI_LLM_MODEL"))
    llm_base_url: str = field(default_factory=lambda: env("MAI_LLM_BASE_URL", DEFAULT_LLM_BASE_URL))
    llm_api_key: str | None = field(default_factory=lambda: env("MAI_LLM_API_KEY") or None)
    llm: Annotated[BaseChatModel | None, SkipJsonSchema()] = None

    def model_context(self) -> AssistantContext:
        """The assistant context `chat_model` builds this run's model from."""
        return AssistantContext(
            user_id=self.user_id,
            model=self.model,
            llm_base_url=self.llm_base_url,
            llm_api_key=self.llm_api_key,
            llm=self.llm,
        )
