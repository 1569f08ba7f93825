"""The knowledge base's vectors in Qdrant: a server, or qdrant-client's local mode (which the
repository tests and the store migration use). Imported only where a Qdrant client is used."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from qdrant_client import AsyncQdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

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
    VectorStoreUnavailable,
    fused_limit,
    hybrid_candidates,
    ranked,
)


@asynccontextmanager
async def _qdrant_errors(url: str) -> AsyncIterator[None]:
    try:
        yield
    except (ResponseHandlingException, httpx.TransportError, ConnectionError, TimeoutError) as e:
        raise VectorStoreUnavailable(
            f"The knowledge base cannot reach Qdrant at {url} ({type(e).__name__}); "
            "check that it is running or fix MAI_QDRANT_URL.",
        ) from None
    except UnexpectedResponse as error:
        if error.status_code is not None and error.status_code >= 500:
            raise VectorStoreUnavailable(
                f"Qdrant at {url} answered HTTP {error.status_code}; retry later.",
            ) from None
        raise


class QdrantIndex:
    """The knowledge-base collection in Qdrant (a server, or qdrant-client's local mode)."""

    def __init__(
        self,
        client: AsyncQdrantClient,
        name: str,
        dimension: int,
        *,
        location: str,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self.owns_client = owns_client
        self.name = name
        self.dimension = dimension
        self.location = location
        self.ensured = False

    @property
    def is_local(self) -> bool:
        """Whether this is Qdrant local mode (files in the data dir, or memory)."""
        return not self.location.startswith(("http://", "https://"))

    @property
    def engine(self) -> str:
        """`qdrant-server`, or `qdrant-local` for qdrant-client's local mode."""
        return "qdrant-local" if self.is_local else "qdrant-server"

    async def ensure(self) -> None:
        """Create the collection if missing; IndexMismatch if it exists with another layout."""
        if self.ensured:
            return
        async with _qdrant_errors(self.location):
            if await self.client.collection_exists(self.name):
                info = await self.client.get_collection(self.name)
                vectors = info.config.params.vectors
                sparse = info.config.params.sparse_vectors or {}
                dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
                if dense is None or SPARSE not in sparse:
                    raise IndexMismatch(
                        f"The Qdrant collection {self.name!r} exists but has no named "
                        f"{DENSE!r} and {SPARSE!r} vectors: it was not created by MAI. Choose "
                        "another MAI_KB_QDRANT_COLLECTION or delete that collection."
                    )
                if dense.size != self.dimension:
                    raise IndexMismatch(
                        f"The Qdrant collection {self.name!r} holds {dense.size}-dimensional "
                        f"vectors but the embedding model gives {self.dimension}. Set "
                        "MAI_EMBEDDING_MODEL back, or point MAI_KB_QDRANT_COLLECTION at a new "
                        "collection and reindex the documents."
                    )
            else:
                await self.client.create_collection(
                    self.name,
                    vectors_config={
                        DENSE: qm.VectorParams(size=self.dimension, distance=qm.Distance.COSINE)
                    },
                    sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
                )
                # Local mode ignores payload indexes (and warns); a server uses them for filters.
                if not self.is_local:
                    for field_name in KEYWORD_FIELDS:
                        await self.client.create_payload_index(
                            self.name, field_name, qm.PayloadSchemaType.KEYWORD
                        )
        self.ensured = True

    async def upsert(self, points: Sequence[ChunkPoint], batch_size: int = 256) -> None:
        """Write chunk points in batches."""
        await self.ensure()
        async with _qdrant_errors(self.location):
            for first in range(0, len(points), batch_size):
                batch = points[first : first + batch_size]
                await self.client.upsert(
                    self.name,
                    points=[
                        qm.PointStruct(
                            id=point.id,
                            vector={
                                DENSE: point.dense,
                                SPARSE: qm.SparseVector(
                                    indices=point.sparse_indices, values=point.sparse_values
                                ),
                            },
                            payload=point.payload,
                        )
                        for point in batch
                    ],
                    wait=True,
                )

    @staticmethod
    def _access_filter(user_id: str, filters: SearchFilters | None = None) -> qm.Filter:
        owner = qm.FieldCondition(key="user_id", match=qm.MatchValue(value=user_id))
        must: list[qm.Condition] = []
        if filters is not None and filters.shared_collections:
            shared = qm.FieldCondition(
                key="collection_id", match=qm.MatchAny(any=list(filters.shared_collections))
            )
            must.append(qm.Filter(should=[owner, shared]))
        else:
            must.append(owner)
        if filters is not None:
            if filters.document_ids:
                must.append(
                    qm.FieldCondition(
                        key="document_id", match=qm.MatchAny(any=list(filters.document_ids))
                    )
                )
            if filters.tags:
                must.append(
                    qm.FieldCondition(key="tags", match=qm.MatchAny(any=list(filters.tags)))
                )
            if filters.collection is not None:
                must.append(
                    qm.FieldCondition(
                        key="collection", match=qm.MatchValue(value=filters.collection)
                    )
                )
            if filters.collection_id is not None:
                must.append(
                    qm.FieldCondition(
                        key="collection_id", match=qm.MatchValue(value=filters.collection_id)
                    )
                )
        return qm.Filter(must=must)

    @staticmethod
    def _document_filter(document_id: str) -> qm.Filter:
        return qm.Filter(
            must=[qm.FieldCondition(key="document_id", match=qm.MatchValue(value=document_id))]
        )

    async def delete_document(self, user_id: str, document_id: str) -> None:
        """Delete every chunk of one document (the caller has checked the right to)."""
        await self.ensure()
        async with _qdrant_errors(self.location):
            await self.client.delete(
                self.name,
                points_selector=qm.FilterSelector(filter=self._document_filter(document_id)),
                wait=True,
            )

    async def delete_points(self, point_ids: Sequence[str]) -> None:
        """Delete chunk points by id."""
        if not point_ids:
            return
        await self.ensure()
        async with _qdrant_errors(self.location):
            await self.client.delete(
                self.name,
                points_selector=qm.PointIdsList(points=list(point_ids)),
                wait=True,
            )

    async def delete_user(self, user_id: str) -> None:
        """Delete every chunk of one user."""
        await self.ensure()
        async with _qdrant_errors(self.location):
            await self.client.delete(
                self.name,
                points_selector=qm.FilterSelector(filter=self._access_filter(user_id)),
                wait=True,
            )

    async def set_payload(self, user_id: str, document_id: str, values: dict[str, Any]) -> None:
        """Overwrite some payload fields on every chunk of one document, vectors untouched."""
        await self.ensure()
        async with _qdrant_errors(self.location):
            await self.client.set_payload(
                self.name, payload=values, points=self._document_filter(document_id), wait=True
            )

    async def count(self, user_id: str, document_id: str | None = None) -> int:
        """How many chunks a user (or one of their documents) has in the index."""
        await self.ensure()
        filters = SearchFilters(document_ids=[document_id] if document_id else ())
        async with _qdrant_errors(self.location):
            result = await self.client.count(
                self.name, count_filter=self._access_filter(user_id, filters), exact=True
            )
        return int(result.count)

    async def point_ids(self, user_id: str, document_id: str) -> list[str]:
        """The ids of every chunk of one document."""
        await self.ensure()
        found: list[str] = []
        offset: Any = None
        async with _qdrant_errors(self.location):
            while True:
                records, offset = await self.client.scroll(
                    self.name,
                    scroll_filter=self._document_filter(document_id),
                    limit=1024,
                    offset=offset,
                    with_payload=False,
                    with_vectors=False,
                )
                found.extend(str(record.id) for record in records)
                if offset is None:
                    return found

    async def payloads(self, user_id: str, document_id: str) -> list[dict[str, Any]]:
        """The payload (text, position, metadata) of every chunk of one document."""
        await self.ensure()
        found: list[dict[str, Any]] = []
        offset: Any = None
        async with _qdrant_errors(self.location):
            while True:
                records, offset = await self.client.scroll(
                    self.name,
                    scroll_filter=self._document_filter(document_id),
                    limit=1024,
                    offset=offset,
                    with_payload=True,
                    with_vectors=False,
                )
                found.extend(dict(record.payload or {}) for record in records)
                if offset is None:
                    return found

    async def export(self, batch_size: int = 256) -> AsyncIterator[list[ChunkPoint]]:
        """Every point with its vectors and payload, in batches (used to move a store)."""
        await self.ensure()
        offset: Any = None
        while True:
            async with _qdrant_errors(self.location):
                records, offset = await self.client.scroll(
                    self.name, limit=batch_size, offset=offset, with_payload=True, with_vectors=True
                )
            batch: list[ChunkPoint] = []
            for record in records:
                vectors = record.vector if isinstance(record.vector, dict) else {}
                dense = vectors.get(DENSE)
                sparse = vectors.get(SPARSE)
                batch.append(
                    ChunkPoint(
                        id=str(record.id),
                        dense=[float(x) for x in dense if isinstance(x, float | int)]
                        if isinstance(dense, list)
                        else [],
                        sparse_indices=list(sparse.indices)
                        if isinstance(sparse, qm.SparseVector)
                        else [],
                        sparse_values=list(sparse.values)
                        if isinstance(sparse, qm.SparseVector)
                        else [],
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
        await self.ensure()
        access = self._access_filter(user_id, filters)
        sparse_query = (
            qm.SparseVector(indices=sparse[0], values=sparse[1]) if sparse is not None else None
        )
        async with _qdrant_errors(self.location):
            if mode == "dense":
                assert dense is not None
                response = await self.client.query_points(
                    self.name, query=dense, using=DENSE, query_filter=access, limit=limit,
                    with_payload=True, score_threshold=min_score,
                )  # fmt: skip
            elif mode == "sparse":
                if sparse_query is None or not sparse_query.indices:
                    return []
                response = await self.client.query_points(
                    self.name, query=sparse_query, using=SPARSE, query_filter=access, limit=limit,
                    with_payload=True,
                )  # fmt: skip
            else:
                assert dense is not None
                candidates = hybrid_candidates(limit)
                prefetch = [
                    qm.Prefetch(
                        query=dense,
                        using=DENSE,
                        filter=access,
                        limit=candidates,
                        score_threshold=min_score,
                    )
                ]
                if sparse_query is not None and sparse_query.indices:
                    prefetch.append(
                        qm.Prefetch(
                            query=sparse_query, using=SPARSE, filter=access, limit=candidates
                        )
                    )
                response = await self.client.query_points(
                    self.name,
                    prefetch=prefetch,
                    query=qm.RrfQuery(rrf=qm.Rrf(k=RRF_K)),
                    query_filter=access,
                    limit=fused_limit(limit),
                    with_payload=True,
                )
        hits = [
            VectorHit(id=str(point.id), score=float(point.score), payload=dict(point.payload or {}))
            for point in response.points
        ]
        return ranked(hits, limit)

    async def settle(self, timeout_seconds: float = 60.0) -> None:
        """Wait until the server's optimizers are done with the collection (status green)."""
        deadline = time.monotonic() + timeout_seconds
        async with _qdrant_errors(self.location):
            while True:
                info = await self.client.get_collection(self.name)
                if info.status != qm.CollectionStatus.YELLOW or time.monotonic() >= deadline:
                    return
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        """Close the client if this index opened it (the app's client closes with its resources)."""
        if self.owns_client:
            await self.client.close()
