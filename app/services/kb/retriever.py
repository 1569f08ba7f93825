"""The knowledge base as the assistant graph's `Retriever`."""

from __future__ import annotations

import contextlib
import uuid

from app.core.errors import ServiceUnavailable
from app.repositories.vectors import SearchFilters
from app.services.kb.service import KnowledgeBase
from graphs.knowledge import Passage, RetrieverUnavailable


class KnowledgeBaseRetriever:
    """Hybrid search over the caller's documents, shaped as the graph's passages."""

    def __init__(self, knowledge_base: KnowledgeBase) -> None:
        self.knowledge_base = knowledge_base

    async def search(self, query: str, *, user_id: str, top_k: int) -> list[Passage]:
        """The best passages of the user's documents and of the shared collections they may
        read; RetrieverUnavailable when Qdrant or the embedder is down."""
        # Background work (a run), so a session of its own for the access lookup.
        shared: list[str] = []
        with contextlib.suppress(ValueError):  # not a user id: their own documents only
            owner = uuid.UUID(user_id)
            async with self.knowledge_base.sessionmaker() as session:
                shared = await self.knowledge_base.readable_collections(session, owner)
        try:
            results = await self.knowledge_base.search(
                user_id, query, top_k=top_k, filters=SearchFilters(shared_collections=shared)
            )
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
                collection=result.collection,
            )
            for result in results
        ]
