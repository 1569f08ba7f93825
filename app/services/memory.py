"""Long-term memory use cases: a user's own memories (see, search, correct, delete, export).

The memories themselves live in the LangGraph store (`app.core.store`), laid out by
`graphs.memory.MemoryBook`, the same code the assistant's memory nodes use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import BaseStore

from app.core.config import Settings
from app.core.errors import NotFound, ServiceUnavailable
from app.core.logging import get_logger
from app.core.resources import Resources
from app.core.store import MeteredStore, check_dimension, open_memory_store, stored_dimension
from app.services.kb.embeddings import EmbeddingUnavailable, create_embedder
from app.services.kb.service import KnowledgeBase
from graphs.memory import (
    PREFERENCES_KEY,
    Memory,
    MemoryBook,
    MemoryKind,
    MemoryOptions,
    memory_namespace,
    preferences_namespace,
)

log = get_logger(__name__)


async def open_memory_store_for(
    resources: Resources, knowledge_base: KnowledgeBase
) -> MeteredStore | None:
    """Open the memory store on the knowledge base's embedding model, closed with `resources`.

    An embedding model that cannot tell its dimension at start (its server is down), or a
    PostgreSQL without the pgvector extension, leaves memory off until the next start (logged,
    and the memory API answers 503) instead of stopping the whole service.
    """
    embedder = knowledge_base.embedder
    try:
        dims = await embedder.dimension()
    except EmbeddingUnavailable as error:
        log.warning("memory_unavailable", reason=error.detail)
        return None
    # psycopg is imported only where PostgreSQL is used: it is a large import.
    store_errors: tuple[type[Exception], ...] = ()
    if resources.settings.uses_postgres:
        import psycopg

        store_errors = (psycopg.Error,)
    try:
        return await open_memory_store(
            resources.settings, resources.exit_stack, embedder.embed, dims, embedder.model_name
        )
    except store_errors as error:
        log.error(
            "memory_unavailable",
            reason=str(error).strip(),
            hint="the memory store needs the pgvector extension: install it on the PostgreSQL "
            "server (pgvector/pgvector image, or .ci/install-pgvector) or CREATE EXTENSION "
            "vector as a superuser",
        )
        return None


async def check_memory_dimension(settings: Settings) -> None:
    """Before the server starts: stop (MemoryIndexMismatch) when the store's index was built
    with another vector size than the configured embedding model gives.

    The model is loaded only when the store already holds vectors; one that cannot be loaded
    is left to the start itself, which runs without memory then.
    """
    held = await stored_dimension(settings)
    if held is None:
        return
    embedder = create_embedder(settings)
    try:
        dims = await embedder.dimension()
    except EmbeddingUnavailable:
        return
    check_dimension(settings, held, dims, embedder.model_name)


def memory_store(resources: Resources) -> BaseStore:
    """The app's LangGraph store, or 503 when it could not be opened at start."""
    store = resources.memory_store
    if store is None:
        raise ServiceUnavailable(
            "Long-term memory is unavailable: its store did not open at start "
            "(see the service log).",
            code="memory_unavailable",
        )
    return store


def memory_options(settings: Settings) -> MemoryOptions:
    """The assistant's memory behaviour for a run, from MAI_MEMORY_*."""
    return MemoryOptions(
        enabled=settings.memory_enabled,
        recall_k=settings.memory_recall_k,
        min_score=settings.memory_min_score,
        duplicate_threshold=settings.memory_duplicate_threshold,
    )


@dataclass(frozen=True, slots=True)
class CleanupReport:
    """What an admin cleanup removed."""

    expired: int
    over_limit: int
    users: int


class MemoryService:
    """One request's view of the memory store: every method acts on one user's memories."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.clock = resources.clock

    @property
    def store(self) -> BaseStore:
        """The store, or 503 when it could not be opened at start."""
        return memory_store(self.resources)

    def book(self, user_id: str) -> MemoryBook:
        """The user's memories."""
        return MemoryBook(self.store, user_id)

    async def add(
        self,
        user_id: str,
        *,
        content: str,
        kind: MemoryKind,
        importance: float,
        metadata: Mapping[str, Any],
    ) -> Memory:
        """Store one memory as given (an exact duplicate updates the existing one)."""
        memory, _ = await self.book(user_id).add(
            content,
            now=self.clock.now(),
            kind=kind,
            importance=importance,
            metadata=metadata,
            # Manual entries merge only with what is already the same text, not a paraphrase.
            duplicate_threshold=0.999,
        )
        return memory

    async def page(
        self, user_id: str, *, kind: MemoryKind | None, limit: int, offset: int
    ) -> tuple[list[Memory], int]:
        """A page of the user's memories, most recently updated first, and the total."""
        memories = await self.book(user_id).all()
        if kind is not None:
            memories = [memory for memory in memories if memory.kind == kind]
        return memories[offset : offset + limit], len(memories)

    async def search(
        self, user_id: str, query: str, *, limit: int, min_importance: float
    ) -> list[Memory]:
        """The user's memories closest in meaning to `query`, best first."""
        return await self.book(user_id).search(query, limit=limit, min_importance=min_importance)

    async def get(self, user_id: str, memory_id: str) -> Memory:
        """One of the user's memories, or 404 (another user's id is 404 too)."""
        memory = await self.book(user_id).get(memory_id)
        if memory is None:
            raise NotFound("No memory with this id.", code="memory_not_found")
        return memory

    async def update(
        self,
        user_id: str,
        memory_id: str,
        *,
        content: str | None,
        kind: MemoryKind | None,
        importance: float | None,
        metadata: Mapping[str, Any] | None,
    ) -> Memory:
        """Correct one of the user's memories."""
        memory = await self.get(user_id, memory_id)
        return await self.book(user_id).update(
            memory,
            now=self.clock.now(),
            content=content,
            kind=kind,
            importance=importance,
            metadata=metadata,
        )

    async def delete(self, user_id: str, memory_id: str) -> None:
        """Delete one of the user's memories, or 404."""
        if not await self.book(user_id).forget(memory_id):
            raise NotFound("No memory with this id.", code="memory_not_found")

    async def delete_all(self, user_id: str) -> int:
        """Forget everything about the user; how many memories there were."""
        return await self.book(user_id).forget_all()

    async def forget_user(self, user_id: str) -> int:
        """Delete a deleted account's memories (nothing to do when the store is not open)."""
        if self.resources.memory_store is None:
            log.warning("memory_not_purged_store_unavailable", user_id=user_id)
            return 0
        await self.store.adelete(preferences_namespace(user_id), PREFERENCES_KEY)
        return await self.delete_all(user_id)

    async def cleanup(self) -> CleanupReport:
        """Remove expired memories, then each user's least valuable beyond the per-user cap.

        Beyond MAI_MEMORY_MAX_PER_USER, the lowest-importance memories go first, and among
        equals the least recently used.
        """
        store = self.store
        expired = await store.sweep_expired() if isinstance(store, MeteredStore) else 0
        cap = self.settings.memory_max_per_user
        removed = 0
        users = 0
        namespaces = await store.alist_namespaces(prefix=("users",), max_depth=3, limit=100_000)
        for namespace in namespaces:
            if len(namespace) != 3 or namespace != memory_namespace(namespace[1]):
                continue
            users += 1
            book = MemoryBook(store, namespace[1])
            memories = await book.all()
            if len(memories) <= cap:
                continue
            ranked = sorted(
                memories,
                key=lambda memory: (
                    memory.importance,
                    memory.last_accessed_at or memory.updated_at,
                ),
            )
            doomed = ranked[: len(memories) - cap]
            await book.delete_many(memory.id for memory in doomed)
            removed += len(doomed)
        log.info("memory_cleanup", expired=expired, over_limit=removed, users=users)
        return CleanupReport(expired=expired, over_limit=removed, users=users)
