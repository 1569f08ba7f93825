"""/api/v1/memory end to end: every endpoint, bad input, ownership, export, delete-all, cleanup."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from app.core.clock import FrozenClock
from app.core.config import Settings
from tests.conftest import Account, AppFactory, SettingsFactory, client_for, register
from tests.kb.support import HashEmbedder

BASE = "/api/v1/memory"


@pytest.fixture
async def memory_app(app_factory: AppFactory, settings_factory: SettingsFactory) -> FastAPI:
    """An app with the deterministic embedding and a per-user cap of three memories."""
    settings: Settings = settings_factory(memory_max_per_user=3, memory_enabled=True)
    return await app_factory(settings, embedder=HashEmbedder())


@pytest.fixture
async def http(memory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the memory app."""
    async with client_for(memory_app) as client:
        yield client


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Account:
    """A user."""
    return await register(http)


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Account:
    """Another user."""
    return await register(http)


async def add(http: httpx.AsyncClient, who: Account, content: str, **fields: Any) -> dict[str, Any]:
    """POST one memory and return it."""
    response = await http.post(BASE, json={"content": content, **fields}, headers=who.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_get_list_search_patch_delete(
    http: httpx.AsyncClient, alice: Account, clock: FrozenClock
) -> None:
    created = await add(
        http, alice, "I am allergic to peanuts", importance=0.9, metadata={"source": "form"}
    )
    assert created["kind"] == "fact"
    assert created["importance"] == 0.9
    assert created["metadata"] == {"source": "form"}
    assert created["access_count"] == 0
    assert created["last_accessed_at"] is None
    assert created["conversation_id"] is None
    clock.advance(1)
    await add(http, alice, "I prefer answers in French", kind="preference", importance=0.3)

    got = await http.get(f"{BASE}/{created['id']}", headers=alice.headers)
    assert got.status_code == 200
    assert got.json()["content"] == "I am allergic to peanuts"

    page = (await http.get(BASE, headers=alice.headers)).json()
    assert page["total"] == 2
    assert page["items"][0]["content"] == "I prefer answers in French"  # newest first
    only = (await http.get(BASE, params={"kind": "preference"}, headers=alice.headers)).json()
    assert [m["content"] for m in only["items"]] == ["I prefer answers in French"]
    second = (await http.get(BASE, params={"limit": 1, "offset": 1}, headers=alice.headers)).json()
    assert [m["id"] for m in second["items"]] == [created["id"]]

    found = (
        await http.get(f"{BASE}/search", params={"q": "peanuts allergic"}, headers=alice.headers)
    ).json()
    assert found["items"][0]["id"] == created["id"]
    assert found["items"][0]["score"] > 0.5
    important = (
        await http.get(
            f"{BASE}/search",
            params={"q": "French answers", "min_importance": 0.5},
            headers=alice.headers,
        )
    ).json()
    assert all(m["importance"] >= 0.5 for m in important["items"])
    assert "I prefer answers in French" not in [m["content"] for m in important["items"]]

    patched = await http.patch(
        f"{BASE}/{created['id']}",
        json={"content": "I am allergic to cashews", "importance": 1.0},
        headers=alice.headers,
    )
    assert patched.status_code == 200
    assert patched.json()["content"] == "I am allergic to cashews"
    assert patched.json()["created_at"] == created["created_at"]
    found = (
        await http.get(f"{BASE}/search", params={"q": "cashews"}, headers=alice.headers)
    ).json()
    assert found["items"][0]["id"] == created["id"]

    deleted = await http.delete(f"{BASE}/{created['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert (await http.get(f"{BASE}/{created['id']}", headers=alice.headers)).status_code == 404
    found = (
        await http.get(f"{BASE}/search", params={"q": "cashews"}, headers=alice.headers)
    ).json()
    assert created["id"] not in [m["id"] for m in found["items"]]


@pytest.mark.parametrize(
    "body",
    [
        {"content": ""},
        {"content": "   "},
        {"content": "x" * 5001},
        {"content": "fine", "importance": 1.5},
        {"content": "fine", "importance": -0.1},
        {"content": "fine", "kind": "rumour"},
        {"content": "fine", "unexpected": True},
    ],
)
async def test_bad_input_is_refused_and_stores_nothing(
    http: httpx.AsyncClient, alice: Account, body: dict[str, Any]
) -> None:
    response = await http.post(BASE, json=body, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert "error" in response.json()
    assert (await http.get(BASE, headers=alice.headers)).json()["total"] == 0


async def test_the_longest_content_is_accepted(http: httpx.AsyncClient, alice: Account) -> None:
    created = await add(http, alice, "y" * 5000)
    assert len(created["content"]) == 5000


async def test_unknown_and_other_users_ids_are_404(
    http: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    mine = await add(http, alice, "my locker code is 1234")
    unknown = str(uuid.uuid4())
    for who, memory_id in ((alice, unknown), (bob, mine["id"])):
        assert (await http.get(f"{BASE}/{memory_id}", headers=who.headers)).status_code == 404
        patch = await http.patch(
            f"{BASE}/{memory_id}", json={"importance": 0.1}, headers=who.headers
        )
        assert patch.status_code == 404
        assert (await http.delete(f"{BASE}/{memory_id}", headers=who.headers)).status_code == 404
    bobs_search = await http.get(f"{BASE}/search", params={"q": "locker code"}, headers=bob.headers)
    assert bobs_search.json()["items"] == []
    # Alice's memory survived Bob's attempts unchanged.
    still = (await http.get(f"{BASE}/{mine['id']}", headers=alice.headers)).json()
    assert still["importance"] == mine["importance"]


async def test_patch_validates_its_fields(http: httpx.AsyncClient, alice: Account) -> None:
    mine = await add(http, alice, "I run on Tuesdays")
    for body in ({"content": ""}, {"importance": 2}, {"kind": "rumour"}):
        response = await http.patch(f"{BASE}/{mine['id']}", json=body, headers=alice.headers)
        assert response.status_code == 422


async def test_the_memory_switch(http: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    settings = await http.get(f"{BASE}/settings", headers=alice.headers)
    assert settings.json() == {"memory_enabled": True, "service_enabled": True}
    off = await http.put(f"{BASE}/settings", json={"memory_enabled": False}, headers=alice.headers)
    assert off.status_code == 200
    assert (await http.get(f"{BASE}/settings", headers=alice.headers)).json()[
        "memory_enabled"
    ] is False
    assert (await http.get(f"{BASE}/settings", headers=bob.headers)).json()[
        "memory_enabled"
    ] is True
    bad = await http.put(
        f"{BASE}/settings", json={"memory_enabled": "maybe"}, headers=alice.headers
    )
    assert bad.status_code == 422


def operations(operation: str) -> float:
    """The memory operations counted so far on /metrics."""
    return REGISTRY.get_sample_value("mai_memory_operations_total", {"operation": operation}) or 0


async def test_store_operations_are_counted_on_metrics(
    http: httpx.AsyncClient, alice: Account
) -> None:
    before = {op: operations(op) for op in ("read", "search", "write", "delete")}
    mine = await add(http, alice, "counted memory")
    await http.get(f"{BASE}/search", params={"q": "counted"}, headers=alice.headers)
    await http.delete(f"{BASE}/{mine['id']}", headers=alice.headers)
    for op in ("read", "search", "write", "delete"):
        assert operations(op) > before[op], op
    text = (await http.get("/metrics")).text
    assert 'mai_memory_operations_total{operation="write"}' in text


async def test_authentication_is_required(http: httpx.AsyncClient) -> None:
    assert (await http.get(BASE)).status_code == 401
    assert (await http.post(BASE, json={"content": "x"})).status_code == 401


async def test_export_and_delete_all(http: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    await add(http, alice, "first thing")
    await add(http, alice, "second thing", kind="instruction")
    await add(http, bob, "bob's thing")

    export = await http.get(f"{BASE}/export", headers=alice.headers)
    assert export.status_code == 200
    body = export.json()
    assert body["user_id"] == alice.id
    assert body["count"] == 2
    assert {m["content"] for m in body["memories"]} == {"first thing", "second thing"}

    wiped = await http.delete(BASE, headers=alice.headers)
    assert wiped.json() == {"deleted": 2}
    assert (await http.get(BASE, headers=alice.headers)).json()["total"] == 0
    assert (await http.get(BASE, headers=bob.headers)).json()["total"] == 1


async def test_cleanup_is_for_admins_and_trims_beyond_the_cap(
    http: httpx.AsyncClient, memory_app: FastAPI, alice: Account
) -> None:
    from app.models import Role, User

    for index, importance in enumerate((0.9, 0.1, 0.8, 0.2, 0.7)):
        await add(http, alice, f"memory number {index}", importance=importance)
    assert (await http.post(f"{BASE}/cleanup", headers=alice.headers)).status_code == 403

    admin = await register(http)
    async with memory_app.state.resources.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(admin.id))
        user.role = Role.admin.value
        await session.commit()
    report = await http.post(f"{BASE}/cleanup", headers=admin.headers)
    assert report.status_code == 200, report.text
    assert report.json()["over_limit"] == 2
    kept = (await http.get(BASE, headers=alice.headers)).json()
    assert sorted(m["importance"] for m in kept["items"]) == [0.7, 0.8, 0.9]


async def test_deleting_a_user_deletes_their_memories(
    http: httpx.AsyncClient, memory_app: FastAPI, alice: Account
) -> None:
    from app.models import Role, User
    from graphs.memory import MemoryBook

    await add(http, alice, "something private")
    admin = await register(http)
    async with memory_app.state.resources.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(admin.id))
        user.role = Role.admin.value
        await session.commit()
    response = await http.delete(f"/api/v1/users/{alice.id}", headers=admin.headers)
    assert response.status_code == 204
    store = memory_app.state.resources.memory_store
    assert await MemoryBook(store, alice.id).all() == []
