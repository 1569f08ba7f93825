"""GET /kb/documents/{id}/chunks: a document's indexed chunks, in reading order."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from tests.conftest import AccountFactory, AppFactory, SettingsFactory
from tests.kb.support import HashEmbedder, ingest, wait_done

pytestmark = pytest.mark.usefixtures("backend")

SECTIONS = "\n\n".join(
    f"## Part {n}\n\n" + " ".join(f"Sentence {n}.{i} about topic {n}." for i in range(12))
    for n in range(4)
)


@pytest.fixture
def settings(settings_factory: SettingsFactory) -> Settings:
    """Small chunks, so one short document has several."""
    return settings_factory(rate_limit_per_minute=0, kb_chunk_tokens=64, kb_chunk_overlap=0)


@pytest.fixture
async def app(app_factory: AppFactory, settings: Settings, embedder: HashEmbedder) -> FastAPI:
    """An app whose knowledge base uses the test embedding and small chunks."""
    return await app_factory(settings, embedder=embedder)


async def test_chunks_in_order_paged_current_version_and_owner_only(
    client: httpx.AsyncClient, account_factory: AccountFactory
) -> None:
    owner, stranger = await account_factory(), await account_factory()
    doc = await ingest(client, owner.headers, "guide.md", f"# Guide\n\n{SECTIONS}".encode())
    assert doc["status"] == "ready", doc
    assert doc["chunk_count"] > 2, doc
    url = f"/api/v1/kb/documents/{doc['id']}/chunks"

    response = await client.get(url, headers=owner.headers, params={"limit": 100})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == doc["chunk_count"]
    assert [c["index"] for c in body["items"]] == list(range(doc["chunk_count"]))
    assert "Sentence 0.0 about topic 0." in body["items"][0]["text"]
    assert body["items"][-1]["heading_path"][-1] == "Part 3"
    assert all(c["start"] < c["end"] for c in body["items"])

    second = await client.get(url, headers=owner.headers, params={"limit": 1, "offset": 1})
    assert [c["index"] for c in second.json()["items"]] == [1]

    # A new version: only its chunks are listed, not the previous version's.
    replaced = await client.put(
        f"/api/v1/kb/documents/{doc['id']}/content",
        headers=owner.headers,
        files={"file": ("guide.md", b"# Guide\n\nNow a single short paragraph.")},
    )
    assert replaced.status_code == 202, replaced.text
    done = await wait_done(client, owner.headers, doc["id"])
    after = (await client.get(url, headers=owner.headers)).json()
    assert after["total"] == done["chunk_count"] == 1
    assert "single short paragraph" in after["items"][0]["text"]

    # Another user's document is not found, as for every other document route.
    hidden = await client.get(url, headers=stranger.headers)
    assert (hidden.status_code, hidden.json()["error"]) == (404, "document_not_found")
