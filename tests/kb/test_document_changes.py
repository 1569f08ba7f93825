"""Documents that change: metadata edits without re-embedding, and retrying a failed upload."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.services.kb.embeddings import EmbeddingUnavailable
from tests.conftest import AppFactory, client_for, register
from tests.kb.support import BlockedEmbedder, HashEmbedder, ingest, upload, wait_done

pytestmark = pytest.mark.usefixtures("backend")


async def search(
    client: httpx.AsyncClient, headers: dict[str, str], query: str, **filters: object
) -> list[dict[str, object]]:
    response = await client.post(
        "/api/v1/kb/search", headers=headers, json={"query": query, "filters": filters}
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["results"]
    return results


async def test_patch_changes_metadata_in_the_index_without_embedding(
    client: httpx.AsyncClient, user: object, embedder: HashEmbedder
) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    doc = await ingest(
        client, headers, "pump.txt", b"The pump gasket is replaced yearly.", tags="draft"
    )
    assert doc["status"] == "ready"
    calls = embedder.calls
    response = await client.patch(
        f"/api/v1/kb/documents/{doc['id']}",
        headers=headers,
        json={"title": "Pump manual", "tags": ["Manuals", "ops"], "collection": "plant"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["title"], body["tags"], body["collection"]) == (
        "Pump manual", ["manuals", "ops"], "plant",
    )  # fmt: skip
    assert embedder.calls == calls, "a metadata change embeds nothing"
    [hit] = await search(client, headers, "pump gasket", tags=["ops"], collection="plant")
    assert hit["title"] == "Pump manual"
    assert await search(client, headers, "pump gasket", tags=["draft"]) == []
    # Leaving a field out keeps it; null clears the collection.
    response = await client.patch(
        f"/api/v1/kb/documents/{doc['id']}", headers=headers, json={"collection": None}
    )
    assert (response.json()["title"], response.json()["collection"]) == ("Pump manual", None)
    assert await search(client, headers, "pump gasket", collection="plant") == []
    assert len(await search(client, headers, "pump gasket", tags=["manuals"])) == 1


async def test_patch_bad_input(client: httpx.AsyncClient, user: object, app: FastAPI) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    doc = await ingest(client, headers, "a.txt", b"Some text about valves.")
    url = f"/api/v1/kb/documents/{doc['id']}"
    unknown = await client.patch(url, headers=headers, json={"owner": "someone"})
    assert unknown.status_code == 422
    empty_title = await client.patch(url, headers=headers, json={"title": ""})
    assert empty_title.status_code == 422
    too_many = await client.patch(url, headers=headers, json={"tags": [f"t{i}" for i in range(30)]})
    assert too_many.status_code == 422
    other = await register(client)
    response = await client.patch(url, headers=other.headers, json={"title": "Mine now"})
    assert response.status_code == 404
    assert (await client.get(url, headers=headers)).json()["title"] == "a"


async def test_patch_while_indexing_is_a_conflict(
    app_factory: AppFactory, settings: Settings
) -> None:
    embedder = BlockedEmbedder()
    app = await app_factory(settings, embedder=embedder)
    async with client_for(app) as client:
        account = await register(client)
        response = await upload(client, account.headers, "slow.txt", b"Text that takes forever.")
        await embedder.started.wait()
        patch = await client.patch(
            f"/api/v1/kb/documents/{response.json()['id']}",
            headers=account.headers,
            json={"title": "New"},
        )
        assert patch.status_code == 409
        assert patch.json()["error"] == "document_busy"


class FlakyEmbedder(HashEmbedder):
    """The test embedding, whose server is down for the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Fail while failures remain, then embed."""
        if self.failures > 0:
            self.failures -= 1
            raise EmbeddingUnavailable("The embeddings server is not answering.")
        return await super().embed(texts)


async def test_uploading_a_failed_document_again_retries_it(
    app_factory: AppFactory, settings: Settings
) -> None:
    app = await app_factory(settings, embedder=FlakyEmbedder(failures=1))
    async with client_for(app) as client:
        account = await register(client)
        data = b"The boiler pressure must stay under three bar."
        first = await ingest(client, account.headers, "boiler.txt", data)
        assert (first["status"], first["error_code"]) == ("failed", "embeddings_unavailable")
        again = await upload(client, account.headers, "boiler.txt", data)
        assert again.status_code == 202, again.text
        assert (again.json()["id"], again.json()["status"]) == (first["id"], "queued")
        done = await wait_done(client, account.headers, first["id"])
        assert (done["status"], done["error_code"]) == ("ready", None)
        # Now that it is ready, the same content once more is a duplicate again.
        duplicate = await upload(client, account.headers, "boiler.txt", data)
        assert duplicate.status_code == 409


async def test_put_content_indexes_a_new_version_and_drops_the_old_chunks(
    client: httpx.AsyncClient, user: object, app: FastAPI
) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    doc = await ingest(client, headers, "policy.txt", b"Vacation is twenty days a year.")
    assert (doc["version"], doc["status"]) == (1, "ready")
    url = f"/api/v1/kb/documents/{doc['id']}/content"
    response = await client.put(
        url, headers=headers, files={"file": ("policy.md", b"# Policy\n\nVacation is thirty days.")}
    )
    assert response.status_code == 202, response.text
    assert (response.json()["version"], response.json()["status"]) == (2, "queued")
    done = await wait_done(client, headers, doc["id"])
    assert (done["version"], done["status"], done["kind"]) == (2, "ready", "markdown")
    [hit] = await search(client, headers, "vacation days")
    assert "thirty" in str(hit["text"])
    index = await app.state.kb.index()
    assert await index.count(user.id, doc["id"]) == done["chunk_count"]  # type: ignore[attr-defined]
    # The same content again changes nothing; another document's content is a duplicate.
    same = await client.put(
        url, headers=headers, files={"file": ("p.md", b"# Policy\n\nVacation is thirty days.")}
    )
    assert (same.status_code, same.json()["error"]) == (409, "content_unchanged")
    other = await ingest(client, headers, "other.txt", b"Parking is behind the building.")
    taken = await client.put(
        url, headers=headers, files={"file": ("x.txt", b"Parking is behind the building.")}
    )
    assert (taken.status_code, taken.json()["meta"]["document_id"]) == (409, other["id"])


async def test_put_while_the_previous_version_is_ingesting_is_a_conflict(
    app_factory: AppFactory, settings: Settings
) -> None:
    embedder = BlockedEmbedder()
    app = await app_factory(settings, embedder=embedder)
    async with client_for(app) as client:
        account = await register(client)
        response = await upload(client, account.headers, "slow.txt", b"Text that takes forever.")
        await embedder.started.wait()
        put = await client.put(
            f"/api/v1/kb/documents/{response.json()['id']}/content",
            headers=account.headers,
            files={"file": ("new.txt", b"Newer text.")},
        )
        assert put.status_code == 409
        assert put.json()["error"] == "document_busy"
        assert put.json()["meta"]["version"] == 1
