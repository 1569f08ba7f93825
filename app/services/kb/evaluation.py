"""Retrieval evaluation on a team's own data: hit@k and MRR per search mode.

A question set is JSONL, one object a line: `question`, and what a right hit is: `document`
(a document id, title or file name) and/or `passage` (text the hit must contain). Every
question is searched in each mode; a question's rank is the position of its first right hit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from app.core.errors import Unprocessable
from app.models import KBDocument
from app.repositories.vectors import SearchFilters, SearchMode
from app.services.kb.service import KnowledgeBase, SearchResult

KS = (1, 5, 10)
DEPTH = max(KS)


@dataclass(frozen=True, slots=True)
class EvalQuestion:
    """One question and what counts as a right answer."""

    question: str
    document: str | None = None
    passage: str | None = None


@dataclass(frozen=True, slots=True)
class EvalRun:
    """One way of searching: a mode, reranked or not."""

    label: str
    mode: SearchMode
    rerank: bool = False


@dataclass(slots=True)
class EvalResult:
    """The ranks of the first right hit (None: not in the top DEPTH), and the scores."""

    label: str
    ranks: list[int | None] = field(default_factory=list)

    def hit_at(self, k: int) -> float:
        """Share of questions with a right hit in the top k."""
        if not self.ranks:
            return 0.0
        return sum(1 for rank in self.ranks if rank is not None and rank <= k) / len(self.ranks)

    @property
    def mrr(self) -> float:
        """Mean reciprocal rank of the first right hit (0 for a miss)."""
        if not self.ranks:
            return 0.0
        return sum(1 / rank for rank in self.ranks if rank is not None) / len(self.ranks)


RUNS = (
    EvalRun("dense", "dense"),
    EvalRun("sparse", "sparse"),
    EvalRun("hybrid", "hybrid"),
    EvalRun("hybrid+rerank", "hybrid", rerank=True),
)


def load_questions(path: Path) -> list[EvalQuestion]:
    """The questions of a JSONL file; 422 naming the line of the first bad one."""
    questions: list[EvalQuestion] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise Unprocessable(f"cannot read {path}: {error}", code="bad_eval_file") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise Unprocessable(f"{path}:{number}: not JSON", code="bad_eval_file") from None
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise Unprocessable(f'{path}:{number}: needs "question" (text)', code="bad_eval_file")
        document, passage = item.get("document"), item.get("passage")
        if not isinstance(document, str | None) or not isinstance(passage, str | None):
            raise Unprocessable(
                f'{path}:{number}: "document" and "passage" are text', code="bad_eval_file"
            )
        if not document and not passage:
            raise Unprocessable(
                f'{path}:{number}: give the expected "document" or "passage"',
                code="bad_eval_file",
            )
        questions.append(EvalQuestion(item["question"], document or None, passage or None))
    if not questions:
        raise Unprocessable(f"{path} holds no questions", code="bad_eval_file")
    return questions


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


class Evaluator:
    """Runs a question set against one user's knowledge base."""

    def __init__(self, kb: KnowledgeBase, user_id: uuid.UUID) -> None:
        self.kb = kb
        self.user_id = user_id
        self._names: dict[str, set[str]] = {}

    async def _load_names(self) -> None:
        """Each readable document's id, title and file name, to match `document`."""
        async with self.kb.sessionmaker() as session:
            result = await session.execute(
                select(KBDocument.id, KBDocument.title, KBDocument.filename)
            )
            for document_id, title, filename in result.all():
                self._names[str(document_id)] = {
                    str(document_id).lower(),
                    _normal(title),
                    _normal(filename),
                }

    def _right(self, question: EvalQuestion, hit: SearchResult) -> bool:
        if question.document is not None and _normal(question.document) not in self._names.get(
            hit.document_id, set()
        ):
            return False
        return question.passage is None or _normal(question.passage) in _normal(hit.text)

    async def run(
        self, questions: Sequence[EvalQuestion], runs: Sequence[EvalRun] = RUNS
    ) -> list[EvalResult]:
        """hit@k and MRR of each run over the questions."""
        # Every mode measures the same index: points still waiting for the optimizer would be
        # merged midway and shift the scores of the runs after.
        await (await self.kb.index()).settle()
        await self._load_names()
        async with self.kb.sessionmaker() as session:
            shared = await self.kb.readable_collections(session, self.user_id)
        results = []
        for run in runs:
            result = EvalResult(run.label)
            for question in questions:
                hits = await self.kb.search(
                    str(self.user_id),
                    question.question,
                    top_k=DEPTH,
                    mode=run.mode,
                    filters=SearchFilters(shared_collections=shared),
                    rerank=run.rerank,
                )
                rank = next(
                    (n for n, hit in enumerate(hits, 1) if self._right(question, hit)), None
                )
                result.ranks.append(rank)
            results.append(result)
        return results
