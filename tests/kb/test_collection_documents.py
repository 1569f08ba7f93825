"""A shared collection's documents follow the collection's permissions: its readers open them,
its writers and admins change them whoever uploaded them, and everyone else gets a 404."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account, AccountFactory
from tests.kb.support import ingest, wait_done

pytestmark = pytest.mark.usefixtures("backend")

COLLECTIONS = "/api/v1/kb/collections"
DOCUMENTS = "/api/v1/kb/documents"


async def create_collection(
    client: httpx.AsyncClient,
    admin: Account,
    name: str,
    visibility: str = "private",
    **members: str,
) -> str:
    """A collection with these members (email: permission); its id."""
    response = await client.post(
        COLLECTIONS,
        headers=admin.headers,
        json={
            "name": name,
            "visibility": visibility,
            "members": [{"email": e, "permission": p} for e, p in members.items()],
        },
    )
    assert response.status_code == 201, response.text
    collection_id: str = response.json()["id"]
    return collection_id


async def put_in(
    client: httpx.AsyncClient, account: Account, collection_id: str, name: str, text: bytes
) -> dict[str, Any]:
    """Upload into a collection and wait until the document is ready."""
    response = await client.post(
        f"{COLLECTIONS}/{collection_id}/documents",
        headers=account.headers,
        files={"file": (name, text, "text/plain")},
    )
    assert response.status_code == 202, response.text
    document = await wait_done(client, account.headers, response.json()["id"])
    assert document["status"] == "ready", document
    return document


async def hits(client: httpx.AsyncClient, account: Account, query: str) -> list[dict[str, Any]]:
    """The account's search hits for a query."""
    response = await client.post(
        "/api/v1/kb/search", headers=account.headers, json={"query": query, "top_k": 10}
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def chunk_texts(client: httpx.AsyncClient, account: Account, document_id: str) -> list[str]:
    """The texts of a document's chunks, as the account reads them."""
    response = await client.get(f"{DOCUMENTS}/{document_id}/chunks", headers=account.headers)
    assert response.status_code == 200, response.text
    return [chunk["text"] for chunk in response.json()["items"]]


async def writes(
    client: httpx.AsyncClient, account: Account, document_id: str
) -> list[tuple[int, str]]:
    """(status, error code) of every change the account attempts on a document."""
    url = f"{DOCUMENTS}/{document_id}"
    attempts = [
        await client.patch(url, headers=account.headers, json={"title": "Renamed"}),
        await client.put(
            f"{url}/content",
            headers=account.headers,
            files={"file": ("new.txt", b"Completely different words.", "text/plain")},
        ),
        await client.post(f"{url}/reindex", headers=account.headers),
        await client.delete(url, headers=account.headers),
    ]
    return [(response.status_code, response.json()["error"]) for response in attempts]


async def test_readers_open_writers_and_admins_change_others_get_404(
    client: httpx.AsyncClient, admin: Account, account_factory: AccountFactory
) -> None:
    uploader, writer, reader, outsider = [await account_factory() for _ in range(4)]
    plant = await create_collection(
        client,
        admin,
        "plant",
        **{uploader.email: "write", writer.email: "write", reader.email: "read"},
    )
    doc = await put_in(
        client, uploader, plant, "pump.txt", b"The pump gasket is replaced every spring."
    )
    url = f"{DOCUMENTS}/{doc['id']}"

    # A reader opens the document and its chunks, and may change nothing: 403, saying why.
    response = await client.get(url, headers=reader.headers)
    assert response.status_code == 200, response.text
    assert (response.json()["id"], response.json()["collection"]) == (doc["id"], "plant")
    assert await chunk_texts(client, reader, doc["id"]) == [
        "The pump gasket is replaced every spring."
    ]
    assert await writes(client, reader, doc["id"]) == [(403, "collection_read_only")] * 4
    response = await client.patch(url, headers=reader.headers, json={"tags": ["x"]})
    assert "may read the collection 'plant' but not change" in response.json()["detail"]

    # Someone outside the collection cannot tell the document from one that does not exist.
    for path in (url, f"{url}/chunks"):
        response = await client.get(path, headers=outsider.headers)
        assert (response.status_code, response.json()["error"]) == (404, "document_not_found")
    assert await writes(client, outsider, doc["id"]) == [(404, "document_not_found")] * 4

    # Nothing the reader and the outsider tried changed the document.
    response = await client.get(url, headers=uploader.headers)
    assert (response.json()["title"], response.json()["tags"], response.json()["version"]) == (
        "pump",
        [],
        1,
    )

    # Another writer changes the uploader's document: metadata, then its content.
    response = await client.patch(
        url, headers=writer.headers, json={"title": "Pump care", "tags": ["maintenance"]}
    )
    assert response.status_code == 200, response.text
    [hit] = await hits(client, reader, "pump gasket")
    assert (hit["title"], hit["tags"], hit["collection"]) == ("Pump care", ["maintenance"], "plant")
    response = await client.put(
        f"{url}/content",
        headers=writer.headers,
        files={"file": ("pump-v2.txt", b"The pump gasket is replaced every autumn.", "text/plain")},
    )
    assert response.status_code == 202, response.text
    replaced = await wait_done(client, writer.headers, doc["id"])
    assert (replaced["status"], replaced["version"]) == ("ready", 2)
    assert await chunk_texts(client, uploader, doc["id"]) == [
        "The pump gasket is replaced every autumn."
    ]
    [hit] = await hits(client, reader, "pump gasket")
    assert hit["text"] == "The pump gasket is replaced every autumn."
    response = await client.post(f"{url}/reindex", headers=writer.headers)
    assert response.status_code == 202, response.text
    assert (await wait_done(client, writer.headers, doc["id"]))["status"] == "ready"

    # The writer deletes it: gone for everyone, vectors included.
    response = await client.delete(url, headers=writer.headers)
    assert response.status_code == 204, response.text
    for account in (uploader, writer, reader):
        assert (await client.get(url, headers=account.headers)).status_code == 404
        assert await hits(client, account, "pump gasket") == []


async def test_admins_manage_any_collection_but_not_private_documents(
    client: httpx.AsyncClient, admin: Account, account_factory: AccountFactory
) -> None:
    uploader, stranger = await account_factory(), await account_factory()
    # A shared collection without members: everyone reads it, only admins write to it.
    handbook = await create_collection(client, admin, "handbook", "shared")
    mine = await put_in(
        client, admin, handbook, "leave.txt", b"Parental leave lasts sixteen weeks."
    )
    archive = await create_collection(client, admin, "archive", **{uploader.email: "write"})
    theirs = await put_in(
        client, uploader, archive, "kiln.txt", b"The kiln is inspected every March."
    )

    # Everyone opens the shared collection's document; a user who is not a member writes nothing.
    response = await client.get(f"{DOCUMENTS}/{mine['id']}/chunks", headers=stranger.headers)
    assert response.json()["total"] == 1
    assert await writes(client, stranger, mine["id"]) == [(403, "collection_read_only")] * 4

    # An admin who is not a member manages a member's upload.
    url = f"{DOCUMENTS}/{theirs['id']}"
    response = await client.patch(url, headers=admin.headers, json={"tags": ["safety"]})
    assert (response.status_code, response.json()["tags"]) == (200, ["safety"])
    assert await chunk_texts(client, admin, theirs["id"]) == ["The kiln is inspected every March."]

    # A user's own document outside any collection is theirs alone, admins included.
    private = await ingest(
        client, uploader.headers, "diary.txt", b"My private notes about the kiln budget."
    )
    private_url = f"{DOCUMENTS}/{private['id']}"
    for account in (admin, stranger):
        response = await client.get(private_url, headers=account.headers)
        assert (response.status_code, response.json()["error"]) == (404, "document_not_found")
        assert await writes(client, account, private["id"]) == [(404, "document_not_found")] * 4
    response = await client.get(private_url, headers=uploader.headers)
    assert (response.status_code, response.json()["title"]) == (200, "diary")

    # Replacing a member's document with the content of one of their private documents is
    # refused without naming the private one.
    response = await client.put(
        f"{url}/content",
        headers=admin.headers,
        files={"file": ("x.txt", b"My private notes about the kiln budget.", "text/plain")},
    )
    assert (response.status_code, response.json()["error"]) == (409, "duplicate_document")
    assert private["id"] not in response.text
    assert "diary" not in response.text

    response = await client.delete(url, headers=admin.headers)
    assert response.status_code == 204, response.text
    assert (await client.get(url, headers=uploader.headers)).status_code == 404
    found = await hits(client, uploader, "kiln inspected March")
    assert theirs["id"] not in {hit["document_id"] for hit in found}


async def test_moving_a_document_needs_write_on_both_collections(
    client: httpx.AsyncClient, admin: Account, account_factory: AccountFactory
) -> None:
    uploader, writer = await account_factory(), await account_factory()
    plant = await create_collection(
        client, admin, "plant", **{uploader.email: "write", writer.email: "write"}
    )
    # The writer of plant only reads `library`, and cannot see `vault` at all.
    library = await create_collection(
        client, admin, "library", **{uploader.email: "write", writer.email: "read"}
    )
    vault = await create_collection(client, admin, "vault", **{uploader.email: "write"})
    own = await create_collection(client, admin, "own", **{writer.email: "write"})
    doc = await put_in(client, uploader, plant, "valve.txt", b"Valve V7 opens clockwise.")
    url = f"{DOCUMENTS}/{doc['id']}"

    response = await client.patch(url, headers=writer.headers, json={"collection_id": library})
    assert (response.status_code, response.json()["error"]) == (403, "collection_read_only")
    response = await client.patch(url, headers=writer.headers, json={"collection_id": vault})
    assert (response.status_code, response.json()["error"]) == (422, "unknown_collection")
    response = await client.patch(url, headers=writer.headers, json={"collection_id": own})
    assert response.status_code == 200, response.text
    assert (response.json()["collection"], response.json()["collection_id"]) == ("own", own)
    [hit] = await hits(client, writer, "valve clockwise")
    assert hit["collection"] == "own"
    # Out of every collection, it is the uploader's private document again.
    response = await client.patch(url, headers=writer.headers, json={"collection_id": None})
    assert (response.status_code, response.json()["collection_id"]) == (200, None)
    assert (await client.get(url, headers=writer.headers)).status_code == 404
    assert await hits(client, writer, "valve clockwise") == []
    assert (await client.get(url, headers=uploader.headers)).status_code == 200
