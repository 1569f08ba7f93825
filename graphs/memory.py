"""Long-term memories about a user, kept in a LangGraph store; shared by graphs and the service.

One memory is one store item under `("users", <user id>, "memories")`, its text in the indexed
`content` field. `MemoryBook` is the only code that reads or writes that layout, so the
assistant's memory nodes and the /memory API always agree on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from langgraph.store.base import BaseStore, Item, PutOp, SearchItem

MemoryKind = Literal["fact", "preference", "instruction"]
MEMORY_KINDS: tuple[MemoryKind, ...] = ("fact", "preference", "instruction")
MAX_CONTENT_CHARS = 5000
# Far above MAI_MEMORY_MAX_PER_USER's default: listing reads one user's whole namespace.
SCAN_LIMIT = 100_000
# Recall ranks by similarity scaled by importance: an unimportant memory keeps this share.
IMPORTANCE_FLOOR = 0.7


@dataclass(frozen=True, kw_only=True)
class MemoryOptions:
    """How the assistant uses long-term memory in a run (from MAI_MEMORY_* in the service)."""

    # Off: nothing is recalled or written (the service-wide kill switch or the user's choice).
    enabled: bool = True
    recall_k: int = 5
    # Cosine similarity a memory needs to be recalled / to count as a duplicate when written.
    min_score: float = 0.3
    duplicate_threshold: float = 0.9
    # What "forget that ..." needs to match before a memory is deleted: stricter than recall.
    forget_min_score: float = 0.5

    def __post_init__(self) -> None:
        if self.recall_k < 1:
            raise ValueError("recall_k must be at least 1")


def memory_namespace(user_id: str) -> tuple[str, str, str]:
    """Where one user's memories live in the store."""
    return ("users", user_id, "memories")


def preferences_namespace(user_id: str) -> tuple[str, str, str]:
    """Where one user's memory preferences live (kept out of the memories' namespace)."""
    return ("users", user_id, "preferences")


PREFERENCES_KEY = "memory"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse(value: object, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return fallback
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return fallback


@dataclass(frozen=True)
class Memory:
    """One remembered fact, preference or instruction, as users see it."""

    id: str
    content: str
    kind: MemoryKind
    importance: float
    created_at: datetime
    updated_at: datetime
    last_accessed_at: datetime | None
    access_count: int
    conversation_id: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    score: float | None = None

    @classmethod
    def from_item(cls, item: Item) -> Memory:
        """Read a store item written by `MemoryBook`."""
        value = item.value
        kind = value.get("kind")
        stamped = item.created_at if item.created_at.tzinfo else item.created_at.replace(tzinfo=UTC)
        # The value's own stamp: SQLite's store rewrites the item's created_at on every put.
        created = _parse(value.get("created_at"), stamped)
        accessed = value.get("last_accessed_at")
        return cls(
            id=item.key,
            content=str(value.get("content", "")),
            kind=cast(MemoryKind, kind) if kind in MEMORY_KINDS else "fact",
            importance=float(value.get("importance", 0.5)),
            created_at=created,
            updated_at=_parse(value.get("updated_at"), created),
            last_accessed_at=_parse(accessed, created) if accessed else None,
            access_count=int(value.get("access_count", 0)),
            conversation_id=value.get("conversation_id"),
            metadata=dict(value.get("metadata") or {}),
            score=item.score if isinstance(item, SearchItem) else None,
        )

    def to_value(self) -> dict[str, Any]:
        """The stored value."""
        return {
            "content": self.content,
            "created_at": _iso(self.created_at),
            "kind": self.kind,
            "importance": self.importance,
            "updated_at": _iso(self.updated_at),
            "last_accessed_at": _iso(self.last_accessed_at) if self.last_accessed_at else None,
            "access_count": self.access_count,
            "conversation_id": self.conversation_id,
            "metadata": self.metadata,
        }

    @property
    def recall_rank(self) -> float:
        """Similarity weighted by importance: what recall orders by."""
        return (self.score or 0.0) * (IMPORTANCE_FLOOR + (1 - IMPORTANCE_FLOOR) * self.importance)


class MemoryBook:
    """One user's memories in a store: add (merging near-duplicates), search, recall, forget."""

    def __init__(self, store: BaseStore, user_id: str) -> None:
        self.store = store
        self.user_id = user_id
        self.namespace = memory_namespace(user_id)

    def _ttl(self) -> float | None:
        """The store's default TTL in minutes: a raw PutOp does not apply it by itself."""
        config = self.store.ttl_config
        return config.get("default_ttl") if config else None

    async def enabled(self) -> bool:
        """The user's own switch: whether the assistant may recall and write memories."""
        item = await self.store.aget(
            preferences_namespace(self.user_id), PREFERENCES_KEY, refresh_ttl=False
        )
        return item is None or bool(item.value.get("enabled", True))

    async def set_enabled(self, enabled: bool) -> None:
        """Turn the assistant's memory on or off for this user (stored memories stay)."""
        await self.store.aput(
            preferences_namespace(self.user_id),
            PREFERENCES_KEY,
            {"enabled": enabled},
            index=False,
            ttl=None,
        )

    async def get(self, memory_id: str) -> Memory | None:
        """One memory, or None when this user has no memory with that id."""
        item = await self.store.aget(self.namespace, memory_id, refresh_ttl=False)
        return Memory.from_item(item) if item is not None else None

    async def all(self) -> list[Memory]:
        """Every memory of the user, most recently updated first."""
        items = await self.store.asearch(self.namespace, limit=SCAN_LIMIT, refresh_ttl=False)
        memories = [Memory.from_item(item) for item in items]
        memories.sort(key=lambda memory: (memory.updated_at, memory.id), reverse=True)
        return memories

    async def search(
        self, query: str, *, limit: int, min_importance: float = 0.0, min_score: float | None = None
    ) -> list[Memory]:
        """Memories by meaning, best first (scores are cosine similarities)."""
        # Over-fetch: importance and score filters apply after the vector search.
        fetch = limit if min_importance <= 0 and min_score is None else limit * 4
        items = await self.store.asearch(self.namespace, query=query, limit=fetch)
        memories = [Memory.from_item(item) for item in items]
        kept = [
            memory
            for memory in memories
            if memory.importance >= min_importance
            and (min_score is None or (memory.score or 0.0) >= min_score)
        ]
        return kept[:limit]

    async def add(
        self,
        content: str,
        *,
        now: datetime,
        kind: MemoryKind = "fact",
        importance: float = 0.5,
        conversation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        duplicate_threshold: float | None = None,
    ) -> tuple[Memory, bool]:
        """Store a memory, or update the one it duplicates: (memory, created).

        A memory whose similarity to an existing one reaches `duplicate_threshold` replaces
        that one's content (keeping the higher importance) instead of adding a copy.
        """
        content = content.strip()
        if duplicate_threshold is not None:
            nearest = await self.store.asearch(
                self.namespace, query=content, limit=1, refresh_ttl=False
            )
            if nearest and (nearest[0].score or 0.0) >= duplicate_threshold:
                existing = Memory.from_item(nearest[0])
                merged = Memory(
                    id=existing.id,
                    content=content,
                    kind=kind,
                    importance=max(existing.importance, importance),
                    created_at=existing.created_at,
                    updated_at=now,
                    last_accessed_at=existing.last_accessed_at,
                    access_count=existing.access_count,
                    conversation_id=conversation_id or existing.conversation_id,
                    metadata={**existing.metadata, **(metadata or {})},
                )
                await self.store.aput(self.namespace, existing.id, merged.to_value())
                return merged, False
        memory = Memory(
            id=str(uuid.uuid4()),
            content=content,
            kind=kind,
            importance=importance,
            created_at=now,
            updated_at=now,
            last_accessed_at=None,
            access_count=0,
            conversation_id=conversation_id,
            metadata=dict(metadata or {}),
        )
        await self.store.aput(self.namespace, memory.id, memory.to_value())
        stored = await self.get(memory.id)
        return (stored or memory), True

    async def update(
        self,
        memory: Memory,
        *,
        now: datetime,
        content: str | None = None,
        kind: MemoryKind | None = None,
        importance: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Memory:
        """Correct a memory; a new content is embedded again."""
        changed = Memory(
            id=memory.id,
            content=content.strip() if content is not None else memory.content,
            kind=kind or memory.kind,
            importance=importance if importance is not None else memory.importance,
            created_at=memory.created_at,
            updated_at=now,
            last_accessed_at=memory.last_accessed_at,
            access_count=memory.access_count,
            conversation_id=memory.conversation_id,
            metadata=dict(metadata) if metadata is not None else memory.metadata,
        )
        # Only a changed text needs a new embedding.
        reindex: Literal[False] | None = None if content is not None else False
        await self.store.aput(self.namespace, memory.id, changed.to_value(), index=reindex)
        return changed

    async def recall(
        self, query: str, *, limit: int, min_score: float, now: datetime
    ) -> list[Memory]:
        """The memories most relevant to `query` (above `min_score`, importance-weighted).

        Each recalled memory's access count and last-accessed time are updated, and (with a
        TTL) its expiry is pushed back.
        """
        candidates = await self.store.asearch(self.namespace, query=query, limit=limit * 3)
        memories = [Memory.from_item(item) for item in candidates]
        relevant = [memory for memory in memories if (memory.score or 0.0) >= min_score]
        relevant.sort(key=lambda memory: memory.recall_rank, reverse=True)
        chosen = relevant[:limit]
        touches: list[PutOp] = []
        for memory in chosen:
            touched = Memory(
                **{
                    **memory.__dict__,
                    "last_accessed_at": now,
                    "access_count": memory.access_count + 1,
                    "score": None,
                }
            )
            # The text is unchanged: keep its embedding instead of computing it again.
            touches.append(
                PutOp(self.namespace, memory.id, touched.to_value(), index=False, ttl=self._ttl())
            )
        if touches:
            await self.store.abatch(touches)
        return chosen

    async def forget(self, memory_id: str) -> bool:
        """Delete one memory; False when there was none with that id."""
        if await self.get(memory_id) is None:
            return False
        await self.store.adelete(self.namespace, memory_id)
        return True

    async def forget_matching(self, description: str, *, min_score: float) -> list[Memory]:
        """Delete the memories that match what the user asked to forget (by meaning)."""
        items = await self.store.asearch(
            self.namespace, query=description, limit=5, refresh_ttl=False
        )
        doomed = [Memory.from_item(item) for item in items if (item.score or 0.0) >= min_score]
        for memory in doomed:
            await self.store.adelete(self.namespace, memory.id)
        return doomed

    async def forget_all(self) -> int:
        """Delete every memory of the user; how many there were."""
        memories = await self.all()
        await self.delete_many(memory.id for memory in memories)
        return len(memories)

    async def delete_many(self, memory_ids: Iterable[str]) -> None:
        """Delete these memories in one batch."""
        ops = [PutOp(self.namespace, memory_id, None) for memory_id in memory_ids]
        if ops:
            await self.store.abatch(ops)
