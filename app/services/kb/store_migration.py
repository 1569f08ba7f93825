"""Moving knowledge-base vectors from Qdrant's local mode into the embedded engine.

Earlier versions kept vectors in qdrant-client's local mode under `<data dir>/qdrant`. The points
are copied as they are (vectors and payload), so nothing is embedded again; the local-mode
collection is deleted once every point is in the new store. A copy interrupted half-way is
simply redone at the next start: points keep their ids, so writing them twice changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from app.core.logging import get_logger
from app.repositories.vectors import VectorIndex

log = get_logger(__name__)


def has_local_collection(local_path: Path, name: str) -> bool:
    """Whether Qdrant local mode holds a collection of this name in the folder."""
    return (local_path / "collection" / name).is_dir()


async def migrate_local_store(local_path: Path, target: VectorIndex, batch_size: int = 512) -> int:
    """Copy the local-mode collection named like `target` into it; the number of points moved."""
    if not has_local_collection(local_path, target.name):
        return 0
    from qdrant_client import AsyncQdrantClient

    from app.repositories.vectors_qdrant import QdrantIndex

    client = AsyncQdrantClient(path=str(local_path))
    source = QdrantIndex(
        client, target.name, target.dimension, location=str(local_path), owns_client=True
    )
    moved = 0
    try:
        await source.ensure()
        async for batch in source.export(batch_size):
            await target.upsert(batch)
            moved += len(batch)
        await client.delete_collection(target.name)
    finally:
        await source.close()
    log.info("kb_store_migrated", collection=target.name, points=moved, engine=target.engine)
    return moved
