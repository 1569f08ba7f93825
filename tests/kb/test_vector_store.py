"""Both vector store implementations under one suite: the embedded engine and qdrant-client.

The qdrant-client implementation is what talks to a Qdrant server; here it runs in qdrant-client's
local mode (no server on this machine), which goes through the same request models.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from app.repositories.vectors import (
    ChunkPoint,
    IndexMismatch,
    SearchFilters,
    VectorIndex,
    chunk_point_id,
)
from app.repositories.vectors_edge import EdgeIndex
from app.repositories.vectors_qdrant import QdrantIndex
from app.services.kb.sparse import document_vector, query_vector
from app.services.kb.store_migration import migrate_local_store
from tests.kb.support import HashEmbedder

EMBED = HashEmbedder(size=32)
ALICE, BOB = "user-alice", "user-bob"
TEAM = "collection-team"


def open_index(engine: str, folder: Path, dimension: int = 32) -> VectorIndex:
    """An index of the given engine in a fresh folder."""
    if engine == "edge":
        return EdgeIndex(folder / "edge", "kb_test", dimension)
    client = AsyncQdrantClient(path=str(folder / "local"))
    return QdrantIndex(client, "kb_test", dimension, location=str(folder), owns_client=True)


@pytest.fixture(params=["edge", "qdrant-client"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    """One empty index per implementation."""
    opened = open_index(request.param, tmp_path)
    await opened.ensure()
    yield opened
    await opened.close()


def point(
    document: str,
    position: int,
    text: str,
    *,
    user: str = ALICE,
    tags: list[str] | None = None,
    collection: str | None = None,
    collection_id: str | None = None,
) -> ChunkPoint:
    """A chunk point with real hash-embedding and keyword vectors."""
    indices, values = document_vector(text)
    return ChunkPoint(
        id=chunk_point_id(document, position),
        dense=EMBED.vector(text),
        sparse_indices=indices,
        sparse_values=values,
        payload={
            "user_id": user,
            "document_id": document,
            "text": text,
            "tags": tags or [],
            "collection": collection,
            "collection_id": collection_id,
            "chunk_index": position,
        },
    )


DOC_PUMP, DOC_INVOICE, DOC_BOB, DOC_TEAM = (str(uuid.uuid4()) for _ in range(4))
POINTS = [
    point(DOC_PUMP, 0, "The pump valve leaks when pressure exceeds nine bar", tags=["ops"]),
    point(DOC_PUMP, 1, "Replace the gasket of the pump every six months", tags=["ops"]),
    point(DOC_INVOICE, 0, "Invoices are paid within thirty days", collection="finance"),
    point(DOC_BOB, 0, "Bob's secret: error ERR-4471 means the router overheated", user=BOB),
    point(
        DOC_TEAM, 0, "Team handbook: the router firmware is updated on Mondays", user=BOB,
        collection="handbook", collection_id=TEAM,
    ),
]  # fmt: skip


async def search(
    index: VectorIndex, text: str, mode: str = "hybrid", user: str = ALICE, **filters: object
) -> list[str]:
    """Document ids of the hits, best first."""
    hits = await index.search(
        user_id=user,
        mode=mode,  # type: ignore[arg-type]
        limit=5,
        dense=EMBED.vector(text),
        sparse=query_vector(text),
        filters=SearchFilters(**filters) if filters else None,  # type: ignore[arg-type]
    )
    return [str(hit.payload["document_id"]) for hit in hits]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
async def test_each_mode_finds_the_matching_chunk_first(index: VectorIndex, mode: str) -> None:
    await index.upsert(POINTS)
    assert (await search(index, "pump gasket replacement", mode))[0] == DOC_PUMP
    assert (await search(index, "when are invoices paid", mode))[0] == DOC_INVOICE


async def test_filters_narrow_by_tag_collection_and_document(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    assert set(await search(index, "pump invoices", tags=["ops"])) == {DOC_PUMP}
    assert set(await search(index, "pump invoices", collection="finance")) == {DOC_INVOICE}
    assert set(await search(index, "pump invoices", document_ids=[DOC_INVOICE])) == {DOC_INVOICE}


async def test_another_users_private_chunks_are_never_returned(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    for mode in ("hybrid", "dense", "sparse"):
        found = await search(index, "ERR-4471 router overheated secret", mode)
        assert DOC_BOB not in found
        assert DOC_TEAM not in found
    assert await search(index, "ERR-4471", "sparse", user=BOB) == [DOC_BOB]


async def test_a_shared_collection_is_readable_by_the_users_given_it(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    found = await search(index, "router firmware Mondays", shared_collections=[TEAM])
    assert found[0] == DOC_TEAM
    # Sharing one collection does not open the owner's private documents.
    assert DOC_BOB not in await search(index, "ERR-4471 overheated", shared_collections=[TEAM])
    assert DOC_TEAM not in await search(index, "router firmware Mondays")


async def test_delete_document_points_and_user(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    assert await index.count(ALICE) == 3
    assert await index.count(ALICE, DOC_PUMP) == 2
    await index.delete_document(ALICE, DOC_PUMP)
    assert await index.count(ALICE) == 1
    assert DOC_PUMP not in await search(index, "pump gasket", "sparse")
    await index.delete_points([chunk_point_id(DOC_INVOICE, 0)])
    assert await index.count(ALICE) == 0
    await index.delete_user(BOB)
    assert await index.count(BOB) == 0


async def test_reindex_overwrites_and_versions_swap_without_a_gap(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    # The same ids written again replace the points instead of duplicating them.
    await index.upsert(POINTS)
    assert await index.count(ALICE, DOC_PUMP) == 2
    old_ids = await index.point_ids(ALICE, DOC_PUMP)
    assert sorted(old_ids) == sorted(chunk_point_id(DOC_PUMP, i) for i in range(2))
    # A new version is written under new ids next to the old one, then the old ids go.
    new = point(DOC_PUMP, 100, "Version two: the pump now runs at twelve bar", tags=["ops"])
    await index.upsert([new])
    assert await index.count(ALICE, DOC_PUMP) == 3
    await index.delete_points(old_ids)
    assert await index.point_ids(ALICE, DOC_PUMP) == [new.id]
    assert await search(index, "twelve bar", "sparse") == [DOC_PUMP]


async def test_set_payload_changes_metadata_without_touching_vectors(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    await index.set_payload(ALICE, DOC_PUMP, {"tags": ["archive"], "title": "Pump manual"})
    assert await search(index, "pump", tags=["ops"]) == []
    hits = await index.search(
        user_id=ALICE, mode="dense", limit=1, dense=EMBED.vector("pump gasket"), sparse=None,
        filters=SearchFilters(tags=["archive"]),
    )  # fmt: skip
    assert hits[0].payload["title"] == "Pump manual"
    assert hits[0].payload["text"].startswith("Replace the gasket")


async def test_export_returns_every_point_with_its_vectors(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    exported = [p async for batch in index.export(batch_size=2) for p in batch]
    assert sorted(p.id for p in exported) == sorted(p.id for p in POINTS)
    by_id = {p.id: p for p in POINTS}
    for copy in exported:
        assert copy.dense == pytest.approx(by_id[copy.id].dense, abs=1e-6)
        assert copy.sparse_indices == by_id[copy.id].sparse_indices
        assert copy.payload["text"] == by_id[copy.id].payload["text"]


@pytest.mark.parametrize("engine", ["edge", "qdrant-client"])
async def test_data_survives_a_reopen_and_a_new_size_is_refused(
    engine: str, tmp_path: Path
) -> None:
    first = open_index(engine, tmp_path)
    await first.upsert(POINTS)
    await first.close()
    again = open_index(engine, tmp_path)
    assert await again.count(ALICE) == 3
    await again.close()
    other = open_index(engine, tmp_path, dimension=16)
    with pytest.raises(IndexMismatch, match="32-dimensional"):
        await other.ensure()
    await other.close()


async def test_local_mode_data_moves_into_the_embedded_engine(tmp_path: Path) -> None:
    local_path = tmp_path / "qdrant"
    client = AsyncQdrantClient(path=str(local_path))
    old = QdrantIndex(client, "kb_test", 32, location=str(local_path), owns_client=True)
    await old.upsert(POINTS)
    await old.close()
    edge = EdgeIndex(tmp_path / "vectors" / "kb_test", "kb_test", 32)
    assert await migrate_local_store(local_path, edge) == len(POINTS)
    assert (await search(edge, "pump gasket replacement"))[0] == DOC_PUMP
    assert await edge.count(BOB) == 2
    # The local-mode copy is gone, so a second start moves nothing again.
    assert await migrate_local_store(local_path, edge) == 0
    await edge.close()


async def test_min_score_drops_weak_dense_hits_but_keeps_keyword_matches(
    index: VectorIndex,
) -> None:
    await index.upsert(POINTS)
    query = "invoices"
    dense, sparse = EMBED.vector(query), query_vector(query)

    async def hits(mode: str, min_score: float | None) -> list[tuple[str, float]]:
        found = await index.search(
            user_id=ALICE, mode=mode, limit=5, dense=dense, sparse=sparse,  # type: ignore[arg-type]
            min_score=min_score,
        )  # fmt: skip
        return [(str(hit.payload["document_id"]), hit.score) for hit in found]

    everything = await hits("dense", None)
    assert len(everything) == 3, "no threshold: every chunk of Alice's, however weak"
    assert everything[0][0] == DOC_INVOICE
    assert everything[0][1] > everything[1][1]
    threshold = (everything[0][1] + everything[1][1]) / 2
    strong = await hits("dense", threshold)
    assert [doc for doc, _ in strong] == [DOC_INVOICE]
    assert all(score >= threshold for _, score in strong)
    # Hybrid: the weak dense candidates are gone, the keyword match stays.
    assert [doc for doc, _ in await hits("hybrid", threshold)] == [DOC_INVOICE]
    assert len(await hits("hybrid", None)) == 3
    # Nothing passes a threshold no chunk reaches, and no word matches: nothing comes back.
    assert await index.search(
        user_id=ALICE, mode="hybrid", limit=5, dense=EMBED.vector("zebra"),
        sparse=query_vector("zebra"), min_score=0.99,
    ) == []  # fmt: skip
