"""The LangGraph store API (`/store/...`) driven by the official `langgraph-sdk` client against a
real `mai serve`, on both backends: items, semantic search, filters, namespaces, ownership.

The server is the LangGraph API suite's (`tests/langgraph_api/test_sdk_e2e.py`), with the real
offline MiniLM model as the store's embedding.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from tests.langgraph_api.test_sdk_e2e import (
    _account,
    _status,
    backend,
    database_url,
    server,
    tmp_path,
)

# The real-server fixtures, module-scoped with their backend and directory, used by name.
__all__ = ["backend", "database_url", "server", "tmp_path"]

pytestmark = [pytest.mark.slow]


def _promote(email: str, url: str, extra: dict[str, str]) -> None:
    """Make `email` an admin with the real CLI, as an operator would."""
    mai = shutil.which("mai", path=str(Path(sys.executable).parent))
    assert mai is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    env.update({"MAI_DATABASE_URL": url, "MAI_BCRYPT_ROUNDS": "4", **extra})
    done = subprocess.run(
        [mai, "create-admin", email, "--keep-password"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def test_the_python_sdk_uses_the_store_within_its_own_namespaces(
    server: str, database_url: tuple[str, dict[str, str]]
) -> None:
    headers, key, _ = await _account(server, "ann@example.com")
    async with httpx.AsyncClient(base_url=server, headers=headers) as raw:
        ann_id = (await raw.get("/api/v1/users/me")).json()["id"]
    client = get_client(url=server, api_key=key)
    mine = ["users", ann_id, "memories"]
    notes = ["users", ann_id, "notes"]

    # Items: put, get (null when missing), replace, delete.
    await client.store.put_item(mine, "dog", {"content": "My dog is called Rex", "kind": "fact"})
    await client.store.put_item(mine, "tea", {"content": "I drink green tea every morning"})
    await client.store.put_item(
        mine, "city", {"content": "I live in Lisbon, Portugal", "kind": "fact"}
    )
    await client.store.put_item(notes, "n1", {"content": "Buy milk", "kind": "todo"}, index=False)
    item = await client.store.get_item(mine, "dog")
    assert item["namespace"] == mine
    assert item["key"] == "dog"
    assert item["value"] == {"content": "My dog is called Rex", "kind": "fact"}
    assert item["created_at"]
    assert item["updated_at"]
    assert await client.store.get_item(mine, "nothing-here") is None

    # Semantic search with the real model, filters, limit and offset.
    found = await client.store.search_items(["users", ann_id], query="what is my pet's name")
    assert found["items"][0]["key"] == "dog"
    assert found["items"][0]["score"] > found["items"][-1]["score"]
    facts = await client.store.search_items(mine, filter={"kind": "fact"})
    assert {i["key"] for i in facts["items"]} == {"dog", "city"}
    first = await client.store.search_items(mine, limit=2)
    rest = await client.store.search_items(mine, limit=2, offset=2)
    assert len(first["items"]) == 2
    assert len(rest["items"]) == 1
    assert {i["key"] for i in first["items"] + rest["items"]} == {"dog", "tea", "city"}
    # No prefix: only the caller's own items.
    everything = await client.store.search_items([], limit=50)
    assert {tuple(i["namespace"][:2]) for i in everything["items"]} == {("users", ann_id)}

    # Namespaces: listed without a prefix (own only), with prefix, suffix and depth.
    listed = await client.store.list_namespaces()
    assert sorted(listed["namespaces"]) == sorted([mine, notes])
    assert (await client.store.list_namespaces(suffix=["notes"]))["namespaces"] == [notes]
    shallow = await client.store.list_namespaces(prefix=["users", ann_id], max_depth=2)
    assert shallow["namespaces"] == [["users", ann_id]]
    paged = await client.store.list_namespaces(limit=1, offset=1)
    assert len(paged["namespaces"]) == 1

    await client.store.delete_item(notes, "n1")
    assert await client.store.get_item(notes, "n1") is None
    assert (await client.store.list_namespaces())["namespaces"] == [mine]

    # What the SDK wrote is what the memory API shows (the same store, the same layout).
    async with httpx.AsyncClient(base_url=server, headers=headers) as raw:
        memories = (await raw.get("/api/v1/memory/search", params={"q": "pet name"})).json()
        assert "My dog is called Rex" in [m["content"] for m in memories["items"]]
        # A bearer token works like an API key; bad labels are a 422 in MAI's shape.
        bearer = await raw.post("/store/items/search", json={"namespace_prefix": mine})
        assert bearer.status_code == 200, bearer.text
        bad = await raw.put(
            "/store/items", json={"namespace": ["users", "a.b"], "key": "k", "value": {}}
        )
        assert bad.status_code == 422, bad.text
    async with httpx.AsyncClient(base_url=server) as anonymous:
        assert (await anonymous.post("/store/namespaces", json={})).status_code == 401

    # Another user: every namespace outside their own is a 403, reads and writes alike.
    _, bob_key, _ = await _account(server, "bob@example.com")
    bob = get_client(url=server, api_key=bob_key)
    attempts = [
        bob.store.get_item(mine, "dog"),
        bob.store.put_item(mine, "dog", {"content": "Bob was here"}),
        bob.store.delete_item(mine, "dog"),
        bob.store.search_items(["users", ann_id], query="dog"),
        bob.store.search_items(["users"]),
        bob.store.list_namespaces(prefix=["users"]),
        bob.store.put_item(["shared"], "k", {"content": "global"}),
    ]
    for attempt in attempts:
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await attempt
        assert _status(refused.value) == 403
        assert refused.value.response.json()["error"] == "namespace_forbidden"
    assert (await bob.store.search_items([]))["items"] == []
    assert (await bob.store.list_namespaces())["namespaces"] == []
    assert (await client.store.get_item(mine, "dog"))["value"]["content"] == "My dog is called Rex"

    # An admin may use any namespace: the same key, once its user is promoted.
    url, extra = database_url
    _promote("bob@example.com", url, extra)
    admin = bob
    assert (await admin.store.get_item(mine, "dog"))["key"] == "dog"
    await admin.store.put_item(["shared", "docs"], "readme", {"content": "Hello"})
    assert ["shared", "docs"] in (await admin.store.list_namespaces())["namespaces"]
    users = await admin.store.list_namespaces(prefix=["users"], max_depth=2)
    assert ["users", ann_id] in users["namespaces"]
