"""The knowledge base's vector store: one interface, what its implementations share.

`VectorIndex` is what the service uses. `app.repositories.vectors_qdrant.QdrantIndex` talks to a
Qdrant server (or to qdrant-client's local mode, which the repository tests and the store
migration use); `app.repositories.vectors_edge.EdgeIndex` is the embedded engine used when
MAI_QDRANT_URL is unset. qdrant-client is imported only by the first: it costs about a second
of CPU to import, which a start on the embedded default does not pay.
Both store the same points (named `dense` and `sparse` vectors, the same payload) and apply
access rules inside the vector filter, so a search never sees another user's private chunks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from app.core.errors import ServiceUnavailable

DENSE = "dense"
SPARSE = "sparse"
SearchMode = Literal["hybrid", "dense", "sparse"]


class VectorStoreUnavailable(ServiceUnavailable):
    """Qdrant does not answer."""

    code = "kb_unavailable"
    default_detail = "The knowledge base (Qdrant) is unavailable; retry later."


class IndexMismatch(RuntimeError):
    """The existing collection was built for another vector size or layout."""


def collection_name(model_name: str, dimension: int) -> str:
    """One collection per embedding model and dimension, e.g. kb_all_minilm_l6_v2_384."""
    slug = re.sub(r"[^a-z0-9]+", "_", model_name.rsplit("/", 1)[-1].lower()).strip("_")
    return f"kb_{slug or 'model'}_{dimension}"


@dataclass(frozen=True, slots=True)
class ChunkPoint:
    """One chunk to store: its id, both vectors and its payload."""

    id: str
    dense: list[float]
    sparse_indices: list[int]
    sparse_values: list[float]
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VectorHit:
    """One search result: the point's id, score and payload."""

    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Optional narrowing of a search; the access filter is always applied.

    `shared_collections` are the ids of the shared collections the caller may read: a search
    covers the caller's own chunks plus the chunks whose `collection_id` is one of them.
    """

    document_ids: Sequence[str] = ()
    tags: Sequence[str] = ()
    collection: str | None = None
    shared_collections: Sequence[str] = ()
    # Only this shared collection (one of `shared_collections`).
    collection_id: str | None = None


# The payload fields every point carries and that filters use; a server indexes them.
KEYWORD_FIELDS = ("user_id", "document_id", "tags", "collection", "collection_id")


def chunk_point_id(document_id: uuid.UUID | str, index: int, version: int = 1) -> str:
    """A stable point id per document chunk and version: a reindex overwrites in place."""
    name = f"chunk-{index}" if version == 1 else f"v{version}-chunk-{index}"
    return str(uuid.uuid5(uuid.UUID(str(document_id)), name))


class VectorIndex(Protocol):
    """A collection of chunk points with hybrid search; every query is scoped to an owner."""

    name: str
    dimension: int

    @property
    def engine(self) -> str:
        """Which engine stores the vectors: `qdrant-server`, `qdrant-local` or `qdrant-edge`."""

    async def ensure(self) -> None:
        """Create the collection if missing; IndexMismatch if it exists with another layout."""

    async def upsert(self, points: Sequence[ChunkPoint], batch_size: int = 256) -> None:
        """Write chunk points (an existing id is overwritten)."""

    async def delete_document(self, user_id: str, document_id: str) -> None:
        """Delete every chunk of one document of one user."""

    async def delete_points(self, point_ids: Sequence[str]) -> None:
        """Delete chunk points by id."""

    async def delete_user(self, user_id: str) -> None:
        """Delete every chunk of one user."""

    async def set_payload(self, user_id: str, document_id: str, values: dict[str, Any]) -> None:
        """Overwrite some payload fields on every chunk of one document, vectors untouched."""

    async def count(self, user_id: str, document_id: str | None = None) -> int:
        """How many chunks a user (or one of their documents) has in the index."""

    async def point_ids(self, user_id: str, document_id: str) -> list[str]:
        """The ids of every chunk of one document."""

    async def payloads(self, user_id: str, document_id: str) -> list[dict[str, Any]]:
        """The payload (text, position, metadata) of every chunk of one document."""

    def export(self, batch_size: int = 256) -> AsyncIterator[list[ChunkPoint]]:
        """Every point with its vectors and payload, in batches (used to move a store)."""

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

    async def settle(self) -> None:
        """Return once every point written so far is indexed (searches then rank stably)."""

    async def close(self) -> None:
        """Release the files or connections the index holds."""


# Qdrant's own default for reciprocal rank fusion; the embedded engine uses the same constant
# so both implementations rank alike.
RRF_K = 2


def fused_limit(limit: int) -> int:
    """How many fused hits to ask the engine for, so ties at the cut can be settled here.

    Reciprocal rank fusion gives equal scores to hits with mirrored ranks (3rd dense and 5th
    keyword, 5th dense and 3rd keyword), and the engine orders such ties as its threads finish.
    """
    return limit * 2


def ranked(hits: Sequence[VectorHit], limit: int) -> list[VectorHit]:
    """The best `limit` hits by score, ties broken by point id, so a search repeats exactly."""
    return sorted(hits, key=lambda hit: (-hit.score, hit.id))[:limit]


def hybrid_candidates(limit: int) -> int:
    """How many hits each of the dense and sparse searches contributes to the fusion."""
    return max(limit * 4, 40)
