"""Shared collections: admins create and share them; members read or write; access is in the
vector filter, so nobody finds what they may not read."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account, AccountFactory
from tests.kb.support import wait_done

pytestmark = pytest.mark.usefixtures("backend")

BASE = "/api/v1/kb/collections"


async def search(
    client: httpx.AsyncClient, account: Account, query: str, **filters: Any
) -> list[dict[str, Any]]:
    response = await client.post(
        "/api/v1/kb/search",
        headers=account.headers,
        json={"query": query, "top_k": 10, "filters": filters},
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def put_in(
    client: httpx.AsyncClient, account: Account, collection_id: str, name: str, text: bytes
) -> httpx.Response:
    return await client.post(
        f"{BASE}/{collection_id}/documents",
        headers=account.headers,
        files={"file": (name, text, "text/plain")},
    )


async def names(client: httpx.AsyncClient, account: Account) -> set[str]:
    response = await client.get(BASE, headers=account.headers)
    assert response.status_code == 200, response.text
    return {item["name"] for item in response.json()["items"]}


async def test_members_read_and_write_as_given_and_others_see_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, account_factory: AccountFactory
) -> None:
    alice, bob, carol = [await account_factory() for _ in range(3)]

    # Only admins create collections.
    response = await client.post(BASE, headers=alice.headers, json={"name": "mine"})
    assert (response.status_code, response.json()["error"]) == (403, "admin_required")

    response = await client.post(
        BASE,
        headers=admin.headers,
        json={
            "name": "finance",
            "visibility": "private",
            "members": [
                {"email": alice.email, "permission": "write"},
                {"email": bob.email.upper()},
            ],
        },
    )
    assert response.status_code == 201, response.text
    finance = response.json()
    assert finance["members"] == sorted(
        [{"email": alice.email, "permission": "write"}, {"email": bob.email, "permission": "read"}],
        key=lambda m: m["email"],
    )
    response = await client.post(BASE, headers=admin.headers, json={"name": "finance"})
    assert (response.status_code, response.json()["error"]) == (409, "collection_exists")
    response = await client.post(
        BASE, headers=admin.headers, json={"name": "x", "members": [{"email": "no@example.com"}]}
    )
    assert (response.status_code, response.json()["error"]) == (422, "unknown_member")
    response = await client.post(
        BASE, headers=admin.headers, json={"name": "handbook", "visibility": "shared"}
    )
    handbook = response.json()

    # Writers upload, readers may not, and others do not learn the collection exists.
    response = await put_in(
        client, alice, finance["id"], "close.txt", b"Quarterly ledger reconciliation closes Friday."
    )
    assert response.status_code == 202, response.text
    assert response.json()["collection_id"] == finance["id"]
    doc = await wait_done(client, alice.headers, response.json()["id"])
    assert doc["status"] == "ready", doc
    response = await put_in(client, bob, finance["id"], "b.txt", b"Bob's ledger notes.")
    assert (response.status_code, response.json()["error"]) == (403, "collection_read_only")
    response = await put_in(client, carol, finance["id"], "c.txt", b"Carol's ledger notes.")
    assert (response.status_code, response.json()["error"]) == (404, "collection_not_found")
    assert (await client.get(f"{BASE}/{finance['id']}", headers=carol.headers)).status_code == 404

    # Listing: a shared collection without members is everyone's; a private one its members'.
    assert await names(client, carol) == {"handbook"}
    assert await names(client, bob) == {"handbook", "finance"}
    assert await names(client, admin) == {"handbook", "finance"}
    response = await client.get(f"{BASE}/{finance['id']}", headers=bob.headers)
    assert (response.json()["can_write"], response.json()["document_count"]) == (False, 1)
    response = await client.get(f"{BASE}/{finance['id']}/documents", headers=bob.headers)
    assert [d["id"] for d in response.json()["items"]] == [doc["id"]]

    # Search: each hit names its collection; a non-member finds nothing, even by its id.
    [hit] = await search(client, bob, "ledger reconciliation")
    assert (hit["document_id"], hit["collection"], hit["collection_id"]) == (
        doc["id"], "finance", finance["id"],
    )  # fmt: skip
    assert await search(client, carol, "ledger reconciliation") == []
    response = await client.post(
        "/api/v1/kb/search",
        headers=carol.headers,
        json={"query": "ledger", "filters": {"collection_id": finance["id"]}},
    )
    assert response.status_code == 404
    assert len(await search(client, bob, "ledger", collection_id=finance["id"])) == 1
    assert await search(client, bob, "ledger", collection_id=handbook["id"]) == []
    # The assistant's retriever covers the same collections.
    retriever = app.state.resources.retriever
    passages = await retriever.search("ledger reconciliation", user_id=bob.id, top_k=3)
    assert [p["document_id"] for p in passages] == [doc["id"]]
    assert await retriever.search("ledger reconciliation", user_id=carol.id, top_k=3) == []

    # A private document stays private whatever collections its owner belongs to.
    response = await client.post(
        "/api/v1/kb/documents",
        headers=alice.headers,
        files={"file": ("own.txt", b"ERR-4471 means the kiln overheated.", "text/plain")},
    )
    private = await wait_done(client, alice.headers, response.json()["id"])
    assert (await search(client, alice, "ERR-4471 kiln"))[0]["document_id"] == private["id"]
    for other in (bob, admin):
        found = await search(client, other, "ERR-4471 kiln overheated")
        assert private["id"] not in {h["document_id"] for h in found}

    # Sharing changes take effect at the next search: no re-indexing.
    response = await client.patch(
        f"{BASE}/{finance['id']}",
        headers=admin.headers,
        json={"members": [{"email": alice.email, "permission": "write"}]},
    )
    assert response.status_code == 200, response.text
    assert await search(client, bob, "ledger reconciliation") == []
    response = await client.patch(
        f"{BASE}/{finance['id']}", headers=bob.headers, json={"visibility": "shared"}
    )
    assert response.status_code == 403
    # A shared collection with members is its members' only.
    await client.patch(
        f"{BASE}/{handbook['id']}",
        headers=admin.headers,
        json={"members": [{"email": bob.email}]},
    )
    assert await names(client, carol) == set()
    assert await names(client, bob) == {"handbook"}

    # Deleting a collection removes its documents and their vectors.
    response = await client.delete(f"{BASE}/{finance['id']}", headers=alice.headers)
    assert response.status_code == 403
    response = await client.delete(f"{BASE}/{finance['id']}", headers=admin.headers)
    assert response.status_code == 204
    found = await search(client, alice, "ledger reconciliation")
    assert doc["id"] not in {h["document_id"] for h in found}
    assert (
        await client.get(f"/api/v1/kb/documents/{doc['id']}", headers=alice.headers)
    ).status_code == 404


async def test_patch_moves_a_document_into_a_collection_without_embedding(
    client: httpx.AsyncClient, admin: Account, user: Account, account_factory: AccountFactory
) -> None:
    reader = await account_factory()
    response = await client.post(
        BASE,
        headers=admin.headers,
        json={
            "name": "plant",
            "members": [
                {"email": user.email, "permission": "write"},
                {"email": reader.email, "permission": "read"},
            ],
        },
    )
    plant = response.json()
    response = await client.post(
        "/api/v1/kb/documents",
        headers=user.headers,
        files={"file": ("pump.txt", b"The pump gasket is replaced yearly.", "text/plain")},
    )
    doc = await wait_done(client, user.headers, response.json()["id"])
    assert await search(client, reader, "pump gasket") == []

    url = f"/api/v1/kb/documents/{doc['id']}"
    response = await client.patch(
        url, headers=user.headers, json={"collection_id": str(uuid.uuid4())}
    )
    assert (response.status_code, response.json()["error"]) == (422, "unknown_collection")
    response = await client.patch(url, headers=user.headers, json={"collection_id": plant["id"]})
    assert response.status_code == 200, response.text
    assert (response.json()["collection"], response.json()["collection_id"]) == (
        "plant",
        plant["id"],
    )
    [hit] = await search(client, reader, "pump gasket")
    assert hit["collection"] == "plant"
    # The label of a document in a shared collection is the collection's name.
    response = await client.patch(url, headers=user.headers, json={"collection": "other"})
    assert (response.status_code, response.json()["error"]) == (422, "collection_is_shared")
    response = await client.patch(url, headers=user.headers, json={"collection_id": None})
    assert (response.json()["collection"], response.json()["collection_id"]) == (None, None)
    assert await search(client, reader, "pump gasket") == []
    # A reader cannot move their own documents into a collection they may only read.
    response = await client.post(
        "/api/v1/kb/documents",
        headers=reader.headers,
        files={"file": ("r.txt", b"Reader notes on valves.", "text/plain")},
    )
    mine = await wait_done(client, reader.headers, response.json()["id"])
    response = await client.patch(
        f"/api/v1/kb/documents/{mine['id']}",
        headers=reader.headers,
        json={"collection_id": plant["id"]},
    )
    assert (response.status_code, response.json()["error"]) == (403, "collection_read_only")
