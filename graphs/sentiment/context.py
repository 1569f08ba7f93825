"""Run dependencies of the sentiment graph (its `context_schema`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from langgraph.runtime import Runtime

from graphs.model_choice import ModelChoice, env

DEFAULT_GLOSSARY = Path(__file__).parent / "glossary.yaml"


@dataclass(kw_only=True)
class Context(ModelChoice):
    """The model, the glossary file and the batch limits of a sentiment run."""

    glossary_path: str = field(
        default_factory=lambda: env("MAI_SENTIMENT_GLOSSARY", str(DEFAULT_GLOSSARY))
    )
    max_texts: int = 50
    max_chars: int = 20_000

    def __post_init__(self) -> None:
        if self.max_texts < 1:
            raise ValueError("max_texts must be at least 1")
        if self.max_chars < 1:
            raise ValueError("max_chars must be at least 1")


def context_of(runtime: Runtime[Context]) -> Context:
    """The run's context, or the defaults when the caller passed none."""
    context = runtime.context
    return context if isinstance(context, Context) else Context()
