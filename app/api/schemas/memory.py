"""Request and response bodies of /memory."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from graphs.memory import MAX_CONTENT_CHARS, Memory, MemoryKind

MAX_METADATA_BYTES = 10_000
Content = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CONTENT_CHARS)
]
Importance = Annotated[float, Field(ge=0.0, le=1.0, description="0 (trivial) to 1 (essential)")]


def _small_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value, default=str)) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata must be at most {MAX_METADATA_BYTES} bytes of JSON")
    return value


class MemoryIn(BaseModel):
    """A memory to store by hand."""

    model_config = ConfigDict(extra="forbid")

    content: Content
    kind: MemoryKind = "fact"
    importance: Importance = 0.5
    metadata: dict[str, Any] = Field(default_factory=dict)

    _metadata = field_validator("metadata")(_small_metadata)


class MemoryPatch(BaseModel):
    """A correction: only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    content: Content | None = None
    kind: MemoryKind | None = None
    importance: Importance | None = None
    metadata: dict[str, Any] | None = None

    _metadata = field_validator("metadata")(_small_metadata)


class MemoryOut(BaseModel):
    """One memory as the user sees it."""

    id: str
    content: str
    kind: MemoryKind
    importance: float
    metadata: dict[str, Any]
    conversation_id: str | None = Field(description="The conversation it was learned in")
    created_at: datetime
    updated_at: datetime
    last_accessed_at: datetime | None = Field(description="When it was last recalled")
    access_count: int = Field(description="How many times the assistant recalled it")
    score: float | None = Field(default=None, description="Similarity to the query (search)")

    @classmethod
    def of(cls, memory: Memory) -> MemoryOut:
        """The API view of a memory."""
        return cls(
            id=memory.id,
            content=memory.content,
            kind=memory.kind,
            importance=memory.importance,
            metadata=memory.metadata,
            conversation_id=memory.conversation_id,
            created_at=memory.created_at,
            updated_at=memory.updated_at,
            last_accessed_at=memory.last_accessed_at,
            access_count=memory.access_count,
            score=None if memory.score is None else round(memory.score, 4),
        )


class MemorySearchOut(BaseModel):
    """Search results, best first."""

    items: list[MemoryOut]


class MemoryExportOut(BaseModel):
    """Everything remembered about the user."""

    user_id: str
    exported_at: datetime
    count: int
    memories: list[MemoryOut]


class MemoryDeletedOut(BaseModel):
    """How many memories a delete-all removed."""

    deleted: int


class MemorySettingsIn(BaseModel):
    """Your memory switch."""

    model_config = ConfigDict(extra="forbid")

    memory_enabled: bool = Field(description="Off: the assistant neither recalls nor learns")


class MemorySettingsOut(BaseModel):
    """Your memory switch, and whether the service has memory at all."""

    memory_enabled: bool
    service_enabled: bool = Field(description="False when MAI_MEMORY_ENABLED=false")


class MemoryCleanupOut(BaseModel):
    """What an admin cleanup removed."""

    expired: int = Field(description="Memories past MAI_MEMORY_TTL_DAYS")
    over_limit: int = Field(description="Least valuable memories beyond MAI_MEMORY_MAX_PER_USER")
    users: int = Field(description="Users whose memories were checked")
