"""Reranking search candidates with the chat model: one structured call per query.

The fused (RRF) order is good at "which passages mention this"; a chat model reading the
candidates judges "which passages answer this". It is asked once for the candidate numbers
in order of relevance; numbers it leaves out keep their fused order after the ones it ranked,
and any failure (the model down, output that does not parse) keeps the fused order as it was.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from app.core.logging import get_logger
from graphs.structured import ask_structured

log = get_logger(__name__)

T = TypeVar("T")
PASSAGE_CHARS = 700
INSTRUCTIONS = (
    "You rank passages by how well they answer a search query. Read the query and the "
    "numbered passages, then answer with the passage numbers from most to least relevant "
    "in `order`. Leave out passages that do not help answer the query."
)


class Ranking(BaseModel):
    """The model's answer: passage numbers, most relevant first."""

    order: list[int] = Field(description="Passage numbers, most relevant first")


def apply_order(candidates: Sequence[T], order: Sequence[int]) -> list[T]:
    """The candidates in the model's order (1-based numbers); the rest after, in fused order."""
    ranked: list[T] = []
    seen: set[int] = set()
    for number in order:
        if 1 <= number <= len(candidates) and number not in seen:
            seen.add(number)
            ranked.append(candidates[number - 1])
    ranked += [item for index, item in enumerate(candidates, 1) if index not in seen]
    return ranked


class LlmReranker:
    """Reorders candidates with the chat model; the fused order on any failure."""

    def __init__(self, model: Callable[[], Awaitable[BaseChatModel]]) -> None:
        self.model = model
        # Calls that fell back to the fused order (an evaluation reports them).
        self.failures = 0

    async def rerank(self, query: str, candidates: Sequence[T], texts: Sequence[str]) -> list[T]:
        """`candidates` reordered by relevance to `query`, judged on their `texts`."""
        if len(candidates) < 2:
            return list(candidates)
        started = time.perf_counter()
        listing = "\n\n".join(
            f"[{number}] {' '.join(text.split())[:PASSAGE_CHARS]}"
            for number, text in enumerate(texts, 1)
        )
        messages = [
            SystemMessage(content=INSTRUCTIONS),
            HumanMessage(content=f"Query: {query}\n\nPassages:\n{listing}"),
        ]
        try:
            answer = await ask_structured(await self.model(), Ranking, messages)
        except Exception as error:  # a reranker failure must never fail the search
            log.warning("kb_rerank_failed", error=type(error).__name__)
            self.failures += 1
            return list(candidates)
        if answer.value is None:
            log.warning("kb_rerank_unparsed", error=answer.error)
            self.failures += 1
            return list(candidates)
        log.debug("kb_reranked", seconds=round(time.perf_counter() - started, 3))
        return apply_order(candidates, answer.value.order)
