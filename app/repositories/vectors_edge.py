"""The embedded vector engine: Qdrant Edge (`qdrant-edge-py`), one shard folder per collection.

Qdrant's local mode in qdrant-client scores and filters in Python, which takes seconds at 50k
chunks; Qdrant Edge is Qdrant's own Rust engine running in-process, with the same named vectors,
payload indexes, filters and fusion as a server, and its own write-ahead log on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from app.core.errors import ServiceUnavailable
from app.core.logging import get_logger
from app.repositories.vectors import (
    DENSE,
    KEYWORD_FIELDS,
    RRF_K,
    SPARSE,
    ChunkPoint,
    IndexMismatch,
    SearchFilters,
    SearchMode,
    VectorHit,
    fused_limit,
    hybrid_candidates,
    ranked,
)

log = get_logger(__name__)

T = TypeVar("T")

# New points are searched exactly (a scan) until the optimizer has indexed them. It runs in the
# background once this many points were written since its last run and writes have paused for
# OPTIMIZE_IDLE_SECONDS: rebuilding the index after every batch of a bulk load would redo the
# same work many times over and slow the load down.
OPTIMIZE_AFTER_POINTS = 2000
OPTIMIZE_IDLE_SECONDS = 2.0


def _scroll(shard: Any, *, request: Any) -> tuple[list[Any], Any]:
    records, offset = shard.scroll(request)
    return list(records), offset


class EdgeStoreLocked(ServiceUnavailable):
    """Another process (a running server, `mai ingest`) has the embedded store open."""

    code = "kb_store_in_use"


class EdgeIndex:
    """The knowledge-base collection as a Qdrant Edge shard in the data directory."""

    def __init__(self, path: Path, name: str, dimension: int) -> None:
        self.path = path
        self.name = name
        self.dimension = dimension
        self._shard: Any = None
        self._open_lock = threading.Lock()
        self._written_since_optimize = 0
        self._optimizer: asyncio.Task[None] | None = None
        self._optimizing = False

    @property
    def engine(self) -> str:
        """Always `qdrant-edge`."""
        return "qdrant-edge"

    def _config(self) -> Any:
        import qdrant_edge as qe

        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self.dimension, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )

    def _open(self) -> Any:
        with self._open_lock:
            if self._shard is not None:
                return self._shard
            import qdrant_edge as qe

            existing = self.path.is_dir() and any(self.path.iterdir())
            try:
                if existing:
                    shard = qe.EdgeShard.load(str(self.path))
                else:
                    self.path.mkdir(parents=True, exist_ok=True)
                    shard = qe.EdgeShard.create(str(self.path), self._config())
            except Exception as error:  # the binding raises plain Exception with a message
                message = str(error)
                if "WouldBlock" in message:
                    raise EdgeStoreLocked(
                        f"The embedded vector store {self.path} is in use by another MAI process "
                        "(a running server or `mai ingest`): stop it, or set MAI_QDRANT_URL to a "
                        "Qdrant server shared by both.",
                    ) from None
                raise
            if existing:
                self._probe_dimension(shard)
            else:
                for field_name in KEYWORD_FIELDS:
                    shard.update(
                        qe.UpdateOperation.create_field_index(
                            field_name, qe.PayloadSchemaType.Keyword
                        )
                    )
            self._shard = shard
            return shard

    def _probe_dimension(self, shard: Any) -> None:
        # The binding exposes no stored config: a query with a vector of our size tells.
        import qdrant_edge as qe

        try:
            shard.query(
                qe.QueryRequest(
                    limit=1, query=qe.Query.Nearest([0.0] * self.dimension, using=DENSE)
                )
            )
        except Exception as error:
            shard.close()
            raise IndexMismatch(self._mismatch_message(str(error))) from None

    def _mismatch_message(self, detail: str) -> str:
        expected = re.search(r"expected dim: (\d+)", detail)
        held = (
            f"{expected.group(1)}-dimensional vectors" if expected else f"other vectors ({detail})"
        )
        return (
            f"The embedded vector store {self.path} holds {held} but the embedding model gives "
            f"{self.dimension}. Set MAI_EMBEDDING_MODEL back, or point MAI_KB_QDRANT_COLLECTION "
            "at a new collection and reindex the documents."
        )

    async def _run(self, call: Callable[[Any], T]) -> T:
        def work() -> T:
            return call(self._open())

        return await asyncio.to_thread(work)

    async def ensure(self) -> None:
        """Open or create the shard; IndexMismatch if it holds vectors of another size."""
        if self._shard is not None:
            return
        await asyncio.to_thread(self._open)
        # Points written just before the last stop may not be indexed yet; a run with nothing
        # to do returns at once.
        self.start_optimizer()

    async def upsert(self, points: Sequence[ChunkPoint], batch_size: int = 256) -> None:
        """Write chunk points in batches; the optimizer indexes them in the background."""
        import qdrant_edge as qe

        def write(shard: Any) -> None:
            for first in range(0, len(points), batch_size):
                batch = points[first : first + batch_size]
                shard.update(
                    qe.UpdateOperation.upsert_points(
                        [
                            qe.Point(
                                uuid.UUID(point.id),
                                {
                                    DENSE: point.dense,
                                    SPARSE: qe.SparseVector(
                                        point.sparse_indices, point.sparse_values
                                    ),
                                },
                                point.payload,
                            )
                            for point in batch
                        ]
                    )
                )

        await self._run(write)
        self._written_since_optimize += len(points)
        if self._written_since_optimize >= OPTIMIZE_AFTER_POINTS:
            self.start_optimizer()

    def start_optimizer(self, delay: float = OPTIMIZE_IDLE_SECONDS) -> None:
        """Index new points in a background thread once writes pause for `delay` seconds."""
        if self._optimizer is not None and not self._optimizer.done():
            if not self._optimizing:
                # Still waiting for the pause: start the wait over.
                self._optimizer.cancel()
            else:
                return
        self._optimizer = asyncio.create_task(self._optimize_later(delay), name="kb-edge-optimizer")

    async def _optimize_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._optimizing = True
        self._written_since_optimize = 0
        try:
            await self.optimize()
        finally:
            self._optimizing = False

    async def optimize(self) -> None:
        """Merge segments and build the HNSW index for the points written so far."""
        try:
            await self._run(lambda shard: shard.optimize())
        except Exception:
            # Searches stay correct on unindexed segments, only slower; the next run retries.
            log.exception("kb_edge_optimize_failed", path=str(self.path))

    async def settle(self) -> None:
        """Wait for a running optimizer, then optimize once more so every point is indexed."""
        await self._stop_optimizer()
        await self.optimize()

    async def _stop_optimizer(self) -> None:
        task, self._optimizer = self._optimizer, None
        if task is None:
            return
        if not self._optimizing:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    @staticmethod
    def _access_filter(user_id: str, filters: SearchFilters | None = None) -> Any:
        import qdrant_edge as qe

        owner = qe.FieldCondition(key="user_id", match=qe.MatchValue(user_id))
        must: list[Any] = []
        if filters is not None and filters.shared_collections:
            shared = qe.FieldCondition(
                key="collection_id", match=qe.MatchAny(list(filters.shared_collections))
            )
            must.append(qe.Filter(should=[owner, shared]))
        else:
            must.append(owner)
        if filters is not None:
            if filters.document_ids:
                must.append(
                    qe.FieldCondition(
                        key="document_id", match=qe.MatchAny(list(filters.document_ids))
                    )
                )
            if filters.tags:
                must.append(qe.FieldCondition(key="tags", match=qe.MatchAny(list(filters.tags))))
            if filters.collection is not None:
                must.append(
                    qe.FieldCondition(key="collection", match=qe.MatchValue(filters.collection))
                )
            if filters.collection_id is not None:
                must.append(
                    qe.FieldCondition(
                        key="collection_id", match=qe.MatchValue(filters.collection_id)
                    )
                )
        return qe.Filter(must=must)

    @staticmethod
    def _document_filter(document_id: str) -> Any:
        import qdrant_edge as qe

        return qe.Filter(
            must=[qe.FieldCondition(key="document_id", match=qe.MatchValue(document_id))]
        )

    async def delete_document(self, user_id: str, document_id: str) -> None:
        """Delete every chunk of one document (the caller has checked the right to)."""
        import qdrant_edge as qe

        selector = self._document_filter(document_id)
        await self._run(
            lambda shard: shard.update(qe.UpdateOperation.delete_points_by_filter(selector))
        )

    async def delete_points(self, point_ids: Sequence[str]) -> None:
        """Delete chunk points by id."""
        import qdrant_edge as qe

        if not point_ids:
            return
        ids: list[Any] = [uuid.UUID(point_id) for point_id in point_ids]
        await self._run(lambda shard: shard.update(qe.UpdateOperation.delete_points(ids)))

    async def delete_user(self, user_id: str) -> None:
        """Delete every chunk of one user."""
        import qdrant_edge as qe

        selector = self._access_filter(user_id)
        await self._run(
            lambda shard: shard.update(qe.UpdateOperation.delete_points_by_filter(selector))
        )

    async def set_payload(self, user_id: str, document_id: str, values: dict[str, Any]) -> None:
        """Overwrite some payload fields on every chunk of one document, vectors untouched."""
        import qdrant_edge as qe

        selector = self._document_filter(document_id)
        await self._run(
            lambda shard: shard.update(qe.UpdateOperation.set_payload_by_filter(selector, values))
        )

    async def count(self, user_id: str, document_id: str | None = None) -> int:
        """How many chunks a user (or one of their documents) has in the index."""
        import qdrant_edge as qe

        filters = SearchFilters(document_ids=[document_id] if document_id else ())
        request = qe.CountRequest(exact=True, filter=self._access_filter(user_id, filters))
        return int(await self._run(lambda shard: shard.count(request)))

    async def point_ids(self, user_id: str, document_id: str) -> list[str]:
        """The ids of every chunk of one document."""
        import qdrant_edge as qe

        selector = self._document_filter(document_id)

        def scroll_all(shard: Any) -> list[str]:
            found: list[str] = []
            offset: Any = None
            while True:
                records, offset = shard.scroll(
                    qe.ScrollRequest(offset=offset, limit=1024, filter=selector, with_payload=False)
                )
                found.extend(str(record.id) for record in records)
                if offset is None:
                    return found

        return await self._run(scroll_all)

    async def payloads(self, user_id: str, document_id: str) -> list[dict[str, Any]]:
        """The payload (text, position, metadata) of every chunk of one document."""
        import qdrant_edge as qe

        selector = self._document_filter(document_id)

        def scroll_all(shard: Any) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            offset: Any = None
            while True:
                records, offset = shard.scroll(
                    qe.ScrollRequest(offset=offset, limit=1024, filter=selector, with_payload=True)
                )
                found.extend(dict(record.payload or {}) for record in records)
                if offset is None:
                    return found

        return await self._run(scroll_all)

    async def export(self, batch_size: int = 256) -> AsyncIterator[list[ChunkPoint]]:
        """Every point with its vectors and payload, in batches (used to move a store)."""
        import qdrant_edge as qe

        offset: Any = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=batch_size, with_payload=True, with_vector=True
            )
            records, offset = await self._run(partial(_scroll, request=request))
            batch = []
            for record in records:
                vectors = record.vector if isinstance(record.vector, dict) else {}
                sparse = vectors.get(SPARSE)
                batch.append(
                    ChunkPoint(
                        id=str(record.id),
                        dense=[float(x) for x in vectors.get(DENSE) or []],
                        sparse_indices=list(sparse.indices) if sparse is not None else [],
                        sparse_values=list(sparse.values) if sparse is not None else [],
                        payload=dict(record.payload or {}),
                    )
                )
            if batch:
                yield batch
            if offset is None:
                return

    async def search(
        self,
        *,
        user_id: str,
        mode: SearchMode,
        limit: int,
        dense: list[float] | None,
        sparse: tuple[list[int], list[float]] | None,
        filters: SearchFilters | None = None,
        min_score: float | None = None,
    ) -> list[VectorHit]:
        """The best chunks the user may read: dense, sparse, or both fused by reciprocal rank.

        `min_score` is the least cosine similarity of a dense hit (dense mode, and the dense
        candidates of hybrid); keyword candidates need a shared term, as always.
        """
        import qdrant_edge as qe

        access = self._access_filter(user_id, filters)
        sparse_query = (
            qe.SparseVector(sparse[0], sparse[1]) if sparse is not None and sparse[0] else None
        )
        if mode == "dense":
            assert dense is not None
            request = qe.QueryRequest(
                limit=limit, query=qe.Query.Nearest(dense, using=DENSE), filter=access,
                with_payload=True, score_threshold=min_score,
            )  # fmt: skip
        elif mode == "sparse":
            if sparse_query is None:
                return []
            request = qe.QueryRequest(
                limit=limit, query=qe.Query.Nearest(sparse_query, using=SPARSE), filter=access,
                with_payload=True,
            )  # fmt: skip
        else:
            assert dense is not None
            candidates = hybrid_candidates(limit)
            prefetches = [
                qe.Prefetch(
                    limit=candidates,
                    query=qe.Query.Nearest(dense, using=DENSE),
                    filter=access,
                    score_threshold=min_score,
                )
            ]
            if sparse_query is not None:
                prefetches.append(
                    qe.Prefetch(
                        limit=candidates,
                        query=qe.Query.Nearest(sparse_query, using=SPARSE),
                        filter=access,
                    )
                )
            request = qe.QueryRequest(
                limit=fused_limit(limit),
                prefetches=prefetches,
                query=qe.Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]  # the stub omits Rrf
                filter=access,
                with_payload=True,
            )
        points = await self._run(lambda shard: shard.query(request))
        hits = [
            VectorHit(id=str(point.id), score=float(point.score), payload=dict(point.payload or {}))
            for point in points
        ]
        return ranked(hits, limit)

    async def close(self) -> None:
        """Wait for a running optimizer, flush and close the shard (releasing its folder)."""
        await self._stop_optimizer()

        def shut() -> None:
            with self._open_lock:
                if self._shard is not None:
                    self._shard.flush()
                    self._shard.close()
                    self._shard = None

        await asyncio.to_thread(shut)
