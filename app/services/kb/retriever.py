"""The knowledge base as the assistant graph's `Retriever`."""

from __future__ import annotations

from app.core.errors import ServiceUnavailable
from app.services.kb.service import KnowledgeBase
from graphs.knowledge import Passage, RetrieverUnavailable


class KnowledgeBaseRetriever:
    """Hybrid search over the caller's documents, shaped as the graph's passages."""

    def __init__(self, knowledge_base: KnowledgeBase) -> None:
        self.knowledge_base = knowledge_base

    async def search(self, query: str, *, user_id: str, top_k: int) -> list[Passage]:
        """The user's best passages; RetrieverUnavailable when Qdrant or the embedder is down."""
        try:
            results = await self.knowledge_base.search(user_id, query, top_k=top_k)
        except ServiceUnavailable as error:
            raise RetrieverUnavailable(error.detail) from error
        return [
            Passage(
                chunk_id=result.chunk_id,
                document_id=result.document_id,
                title=result.title,
                page=result.page,
                section=result.section,
                text=result.text,
                score=result.score,
                start=result.start,
                end=result.end,
            )
            for result in results
        ]
