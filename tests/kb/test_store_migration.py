"""Vectors an older MAI kept in Qdrant local mode are searchable after an upgrade, unembedded."""

from __future__ import annotations

import pytest
from qdrant_client import AsyncQdrantClient

from app.repositories.vectors import ChunkPoint, chunk_point_id, collection_name
from app.repositories.vectors_qdrant import QdrantIndex
from app.services.kb.sparse import document_vector
from tests.conftest import AppFactory, SettingsFactory, client_for, register
from tests.kb.support import HashEmbedder

pytestmark = pytest.mark.usefixtures("backend")


async def test_first_start_moves_local_mode_vectors_into_the_embedded_engine(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(rate_limit_per_minute=0)
    embedder = HashEmbedder()
    app = await app_factory(settings, embedder=embedder)
    async with client_for(app) as client:
        account = await register(client)
    await app_factory.stop(app)

    # What an older version left behind: the user's chunk in local mode, no embedded store.
    name = collection_name(embedder.model_name, embedder.size)
    text = "The HX-200 pump error ERR-4471 means the seal is worn"
    indices, values = document_vector(text)
    local = QdrantIndex(
        AsyncQdrantClient(path=str(settings.qdrant_path)), name, embedder.size,
        location=str(settings.qdrant_path), owns_client=True,
    )  # fmt: skip
    document_id = "0b7d1f4e-8e8a-4f7c-9d38-0d6f3c3b2a11"
    await local.upsert(
        [
            ChunkPoint(
                id=chunk_point_id(document_id, 0),
                dense=embedder.vector(text),
                sparse_indices=indices,
                sparse_values=values,
                payload={
                    "user_id": account.id,
                    "document_id": document_id,
                    "title": "Pumps",
                    "text": text,
                    "chunk_index": 0,
                    "start": 0,
                    "end": len(text),
                },
            )
        ]
    )
    await local.close()
    calls_before = embedder.calls

    app = await app_factory(settings, embedder=embedder)
    async with client_for(app) as client:
        response = await client.post(
            "/api/v1/kb/search",
            headers=account.headers,
            json={"query": "ERR-4471", "mode": "sparse"},
        )
        assert response.status_code == 200, response.text
        [hit] = response.json()["results"]
        assert hit["document_id"] == document_id
        assert hit["text"] == text
    # Nothing was embedded (a keyword search): the stored chunk was moved as it was.
    assert embedder.calls == calls_before
    assert app.state.kb.migrated_points == 1
