"""The sentiment graph's tool: a glossary of domain terms, read from a YAML file.

`lookup_terms` finds the glossary's terms in a text (whole words, case-insensitive) so the
prompt can tell the model what they mean here ("sick" as praise, "churn" as a loss).
`glossary_tool` offers the same lookup as a `ToolSpec` for agents that call tools.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from graphs.sentiment.state import GlossaryHit
from graphs.tools import ToolContext, ToolSpec


class GlossaryError(ValueError):
    """The glossary file is missing or not a mapping of term -> meaning."""


@lru_cache(maxsize=8)
def load_glossary(path: str) -> dict[str, str]:
    """The glossary at `path` as lower-cased term -> meaning (cached per path)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GlossaryError(f"sentiment glossary not found: {path}") from None
    except yaml.YAMLError as error:
        raise GlossaryError(f"sentiment glossary {path} is not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise GlossaryError(f"sentiment glossary {path} must map each term to a meaning")
    return {term.strip().lower(): meaning.strip() for term, meaning in data.items()}


def lookup_terms(text: str, glossary: dict[str, str]) -> list[GlossaryHit]:
    """The glossary terms that occur in `text` as whole words, longest first."""
    lowered = text.lower()
    hits: list[GlossaryHit] = []
    for term in sorted(glossary, key=len, reverse=True):
        if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", lowered):
            hits.append({"term": term, "meaning": glossary[term]})
    return hits


class GlossaryArgs(BaseModel):
    """The text whose domain terms to look up."""

    text: str = Field(min_length=1, max_length=20_000)


def glossary_tool(path: str) -> ToolSpec:
    """The glossary lookup as a tool an agent can call."""

    async def run(args: Any, context: ToolContext) -> str:
        hits = lookup_terms(args.text, load_glossary(path))
        if not hits:
            return "No glossary terms in this text."
        return "\n".join(f"{hit['term']}: {hit['meaning']}" for hit in hits)

    return ToolSpec(
        name="glossary_lookup",
        description="Look up what the domain terms in a text mean (from the team's glossary).",
        args_schema=GlossaryArgs,
        coroutine=run,
        category="sentiment",
    )
