"""/memory: what the assistant remembers about you; see it, search it, correct it, delete it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.api.deps import AdminUser, CurrentUser, PageDep, ResourcesDep
from app.api.schemas.common import PageOut
from app.api.schemas.memory import (
    MemoryCleanupOut,
    MemoryDeletedOut,
    MemoryExportOut,
    MemoryIn,
    MemoryOut,
    MemoryPatch,
    MemorySearchOut,
    MemorySettingsIn,
    MemorySettingsOut,
)
from app.services.memory import MemoryService
from graphs.memory import MemoryKind

router = APIRouter(prefix="/api/v1/memory", tags=["memory"])


def get_memory_service(resources: ResourcesDep) -> MemoryService:
    """Memory use cases on the app's store."""
    return MemoryService(resources)


MemoryServiceDep = Annotated[MemoryService, Depends(get_memory_service)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_memory(body: MemoryIn, user: CurrentUser, memory: MemoryServiceDep) -> MemoryOut:
    """Store a memory by hand (the same text again updates the existing memory)."""
    stored = await memory.add(
        str(user.id),
        content=body.content,
        kind=body.kind,
        importance=body.importance,
        metadata=body.metadata,
    )
    return MemoryOut.of(stored)


@router.get("")
async def list_memories(
    user: CurrentUser,
    page: PageDep,
    memory: MemoryServiceDep,
    kind: Annotated[MemoryKind | None, Query(description="Only this kind")] = None,
) -> PageOut[MemoryOut]:
    """Your memories, most recently updated first."""
    items, total = await memory.page(str(user.id), kind=kind, limit=page.limit, offset=page.offset)
    return PageOut(
        items=[MemoryOut.of(m) for m in items], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/search")
async def search_memories(
    user: CurrentUser,
    memory: MemoryServiceDep,
    q: Annotated[str, Query(min_length=1, max_length=5000, description="What to look for")],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    min_importance: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
) -> MemorySearchOut:
    """Your memories closest in meaning to `q`, best first, with their similarity."""
    found = await memory.search(str(user.id), q, limit=limit, min_importance=min_importance)
    return MemorySearchOut(items=[MemoryOut.of(m) for m in found])


@router.get("/export")
async def export_memories(user: CurrentUser, memory: MemoryServiceDep) -> MemoryExportOut:
    """Everything remembered about you, as JSON."""
    memories = await memory.book(str(user.id)).all()
    return MemoryExportOut(
        user_id=str(user.id),
        exported_at=memory.clock.now(),
        count=len(memories),
        memories=[MemoryOut.of(m) for m in memories],
    )


@router.get("/settings")
async def get_memory_settings(user: CurrentUser, memory: MemoryServiceDep) -> MemorySettingsOut:
    """Whether the assistant remembers things about you."""
    return MemorySettingsOut(
        memory_enabled=await memory.book(str(user.id)).enabled(),
        service_enabled=memory.settings.memory_enabled,
    )


@router.put("/settings")
async def set_memory_settings(
    body: MemorySettingsIn, user: CurrentUser, memory: MemoryServiceDep
) -> MemorySettingsOut:
    """Turn the assistant's memory on or off for you (what it remembers stays until deleted)."""
    await memory.book(str(user.id)).set_enabled(body.memory_enabled)
    return MemorySettingsOut(
        memory_enabled=body.memory_enabled, service_enabled=memory.settings.memory_enabled
    )


@router.post("/cleanup")
async def cleanup_memories(_: AdminUser, memory: MemoryServiceDep) -> MemoryCleanupOut:
    """Remove expired memories and each user's least valuable beyond the cap (admin)."""
    report = await memory.cleanup()
    return MemoryCleanupOut(
        expired=report.expired, over_limit=report.over_limit, users=report.users
    )


@router.delete("")
async def delete_all_memories(user: CurrentUser, memory: MemoryServiceDep) -> MemoryDeletedOut:
    """Forget everything the assistant remembers about you."""
    return MemoryDeletedOut(deleted=await memory.delete_all(str(user.id)))


@router.get("/{memory_id}")
async def get_memory(memory_id: str, user: CurrentUser, memory: MemoryServiceDep) -> MemoryOut:
    """One of your memories."""
    return MemoryOut.of(await memory.get(str(user.id), memory_id))


@router.patch("/{memory_id}")
async def update_memory(
    memory_id: str, body: MemoryPatch, user: CurrentUser, memory: MemoryServiceDep
) -> MemoryOut:
    """Correct one of your memories (a new content is re-indexed for search)."""
    updated = await memory.update(
        str(user.id),
        memory_id,
        content=body.content,
        kind=body.kind,
        importance=body.importance,
        metadata=body.metadata,
    )
    return MemoryOut.of(updated)


@router.delete("/{memory_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_memory(memory_id: str, user: CurrentUser, memory: MemoryServiceDep) -> None:
    """Delete one of your memories; it is never recalled again."""
    await memory.delete(str(user.id), memory_id)
