"""Search modes and filters, the Retriever, and what happens when Qdrant is down or mismatched."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.repositories.vectors import IndexMismatch
from graphs.knowledge import RetrieverUnavailable
from tests.conftest import Account, AppFactory, SettingsFactory, client_for, register
from tests.kb.support import HashEmbedder, ingest, upload

pytestmark = pytest.mark.usefixtures("backend")


async def _search(
    client: httpx.AsyncClient, account: Account, query: str, **body: object
) -> httpx.Response:
    return await client.post(
        "/api/v1/kb/search", headers=account.headers, json={"query": query, **body}
    )


@pytest.fixture
async def library(client: httpx.AsyncClient, user: Account) -> dict[str, str]:
    """Three documents with different tags and collections."""
    docs = {
        "pumps": await ingest(
            client,
            user.headers,
            "pumps.txt",
            b"The HX-200 pump needs a new gasket every year. Error code ERR-4471 means low "
            b"pressure in the pump.",
            tags="hardware",
            collection="manuals",
        ),
        "fans": await ingest(
            client,
            user.headers,
            "fans.txt",
            b"Fans should be cleaned monthly. A noisy fan usually has a worn bearing.",
            tags="hardware,cleaning",
            collection="manuals",
        ),
        "hr": await ingest(
            client,
            user.headers,
            "holidays.txt",
            b"Employees get twenty five days of paid holiday per year.",
            tags="people",
            collection="handbook",
        ),
    }
    return {name: doc["id"] for name, doc in docs.items()}


async def test_modes(client: httpx.AsyncClient, user: Account, library: dict[str, str]) -> None:
    for mode in ("hybrid", "dense", "sparse"):
        response = await _search(client, user, "ERR-4471 pump pressure", mode=mode, top_k=3)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["mode"] == mode
        results = body["results"]
        assert results[0]["document_id"] == library["pumps"], mode
        assert results[0]["title"] == "pumps"
        assert results[0]["tags"] == ["hardware"]
        assert results[0]["collection"] == "manuals"
        assert results[0]["end"] > results[0]["start"] == 0
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)
    # Keyword search only returns chunks that share a term with the query.
    sparse = (await _search(client, user, "gasket", mode="sparse")).json()["results"]
    assert [r["document_id"] for r in sparse] == [library["pumps"]]
    none = (await _search(client, user, "zebra xylophone", mode="sparse")).json()["results"]
    assert none == []
    default = (await _search(client, user, "holiday days")).json()
    assert default["mode"] == "hybrid"
    assert default["results"][0]["document_id"] == library["hr"]
    top1 = (await _search(client, user, "pump fan holiday", top_k=1)).json()["results"]
    assert len(top1) == 1


async def test_filters(client: httpx.AsyncClient, user: Account, library: dict[str, str]) -> None:
    async def ids(**filters: object) -> set[str]:
        response = await _search(client, user, "year fan pump holiday", top_k=10, filters=filters)
        assert response.status_code == 200, response.text
        return {r["document_id"] for r in response.json()["results"]}

    assert await ids() == set(library.values())
    assert await ids(tags=["cleaning"]) == {library["fans"]}
    assert await ids(tags=["Hardware"]) == {library["pumps"], library["fans"]}
    assert await ids(collection="handbook") == {library["hr"]}
    assert await ids(document_ids=[library["pumps"], library["hr"]]) == {
        library["pumps"],
        library["hr"],
    }
    assert await ids(collection="manuals", tags=["people"]) == set()


async def test_validation(client: httpx.AsyncClient, user: Account) -> None:
    for body in (
        {"query": "x", "top_k": 0},
        {"query": "x", "top_k": 51},
        {"query": ""},
        {"query": "x", "mode": "fuzzy"},
        {"query": "x", "filters": {"document_ids": ["not-a-uuid"]}},
    ):
        response = await client.post("/api/v1/kb/search", headers=user.headers, json=body)
        assert response.status_code == 422, body
    empty = await _search(client, user, "anything", top_k=50)
    assert empty.json()["results"] == []


async def test_retriever_returns_passages(
    app: FastAPI, client: httpx.AsyncClient, user: Account, library: dict[str, str]
) -> None:
    retriever = app.state.resources.retriever
    passages = await retriever.search("ERR-4471 pump", user_id=user.id, top_k=2)
    assert len(passages) == 2
    first = passages[0]
    assert first["document_id"] == library["pumps"]
    assert set(first) == {
        "chunk_id", "document_id", "title", "page", "section", "text", "score", "start", "end",
        "collection",
    }  # fmt: skip
    assert "ERR-4471" in first["text"]
    assert await retriever.search("ERR-4471 pump", user_id="someone-else", top_k=2) == []


async def test_qdrant_down_is_503(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    # Nothing listens on port 9: a Qdrant server that is down.
    settings = settings_factory(qdrant_url="http://127.0.0.1:9", rate_limit_per_minute=0)
    app = await app_factory(settings, embedder=HashEmbedder())
    async with client_for(app) as client:
        account = await register(client)
        response = await upload(client, account.headers, "a.txt", b"Some text.")
        assert response.status_code == 503
        assert response.json()["error"] == "kb_unavailable"
        assert "127.0.0.1:9" in response.json()["detail"]
        response = await _search(client, account, "anything")
        assert response.status_code == 503
        assert response.json()["error"] == "kb_unavailable"
        listing = await client.get("/api/v1/kb/documents", headers=account.headers)
        assert listing.status_code == 200, "the document list does not need Qdrant"
        with pytest.raises(RetrieverUnavailable):
            await app.state.resources.retriever.search("x", user_id=account.id, top_k=3)


async def test_dimension_mismatch_fails_the_start(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    settings: Settings = settings_factory(kb_qdrant_collection="kb_shared")
    app = await app_factory(settings, embedder=HashEmbedder(size=64))
    await app_factory.stop(app)
    with pytest.raises(IndexMismatch, match="holds 64-dimensional vectors but the embedding"):
        await app_factory(settings, embedder=HashEmbedder(size=32))
    # The same size starts fine again.
    await app_factory(settings, embedder=HashEmbedder(size=64))
