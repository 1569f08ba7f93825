"""Reranking search candidates with the chat model: one structured call per query.

The fused (RRF) order is good at "which passages mention this"; a chat model reading the
candidates judges "which passages answer this". It is asked once for the candidate numbers
in order of relevance (numbers it leaves out keep their fused order after the ones it ranked),
and that order is blended with the fused one by reciprocal rank. Any failure (the model down,
output that does not parse) keeps the fused order as it was.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
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


# Reciprocal-rank constant for blending the model's order with the fused one (as in hybrid
# fusion): a passage must rank well in both to lead, so one misjudgement moves it a little.
BLEND_K = 60


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


def blend(candidates: Sequence[T], order: Sequence[int]) -> list[T]:
    """The fused order and the model's order (`apply_order`) fused by reciprocal rank.

    A small model ranks passages close to noise; taken alone, its order would bury a passage
    both retrievers put first. Blended, the model moves passages it judges relevant up past
    close neighbours, and a passage leads only when the two orders agree. Ties keep the
    fused order.
    """
    judged = apply_order(range(len(candidates)), order)
    model_rank = {index: rank for rank, index in enumerate(judged, 1)}

    def score(index: int) -> tuple[float, int]:
        return (-(1 / (BLEND_K + index + 1) + 1 / (BLEND_K + model_rank[index])), index)

    return [candidates[index] for index in sorted(range(len(candidates)), key=score)]


@dataclass(frozen=True)
class RerankCall:
    """What one rerank call cost: its wall time and the tokens the model reported."""

    seconds: float
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class RerankCost:
    """Per-query cost over the calls a reranker made (what `mai kb eval` and the bench print)."""

    calls: int
    p50_seconds: float
    max_seconds: float
    input_tokens: float
    output_tokens: float

    @classmethod
    def of(cls, calls: Sequence[RerankCall]) -> RerankCost | None:
        """The summary of `calls`; None when there were none."""
        if not calls:
            return None
        seconds = [call.seconds for call in calls]
        return cls(
            calls=len(calls),
            p50_seconds=statistics.median(seconds),
            max_seconds=max(seconds),
            input_tokens=statistics.fmean(call.input_tokens for call in calls),
            output_tokens=statistics.fmean(call.output_tokens for call in calls),
        )

    def describe(self) -> str:
        """One line: calls, latency and tokens per query."""
        return (
            f"rerank cost per query: p50 {self.p50_seconds:.2f} s (max {self.max_seconds:.2f} s), "
            f"{self.input_tokens:,.0f} input + {self.output_tokens:,.0f} output tokens "
            f"over {self.calls} call(s)"
        )


class LlmReranker:
    """Reorders candidates with the chat model; the fused order on any failure."""

    def __init__(self, model: Callable[[], Awaitable[BaseChatModel]]) -> None:
        self.model = model
        # Calls that fell back to the fused order (an evaluation reports them).
        self.failures = 0
        # Calls that answered, with their cost (an evaluation or a benchmark reports them).
        self.calls: list[RerankCall] = []

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
        seconds = time.perf_counter() - started
        self.calls.append(
            RerankCall(seconds, answer.usage["input_tokens"], answer.usage["output_tokens"])
        )
        log.debug("kb_reranked", seconds=round(seconds, 3))
        return blend(candidates, answer.value.order)
