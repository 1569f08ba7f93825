"""The memory store on both backends: semantic search, filters, duplicates, access tracking, TTL."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from langgraph.store.base import BaseStore

from app.core.config import Settings
from app.core.store import (
    MemoryIndexMismatch,
    MeteredStore,
    open_memory_store,
    store_sqlite_path,
)
from graphs.memory import MemoryBook, memory_namespace
from tests.conftest import SettingsFactory
from tests.kb.support import HashEmbedder

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


async def _open(settings: Settings, stack: AsyncExitStack) -> MeteredStore:
    embedder = HashEmbedder()
    return await open_memory_store(settings, stack, embedder.embed, await embedder.dimension())


async def test_semantic_search_finds_by_meaning_and_stays_in_the_users_namespace(
    store: BaseStore,
) -> None:
    alice = MemoryBook(store, "alice")
    bob = MemoryBook(store, "bob")
    await alice.add("my dog is called Rex", now=NOW, importance=0.9)
    await alice.add("I prefer tea over coffee", now=NOW, kind="preference")
    await bob.add("my dog is called Fido", now=NOW)

    found = await alice.search("what is the name of my dog", limit=5)
    assert found[0].content == "my dog is called Rex"
    assert all("Fido" not in memory.content for memory in found)
    assert found[0].score is not None
    assert found[0].score > 0.2

    important = await alice.search("dog tea", limit=5, min_importance=0.8)
    assert [memory.content for memory in important] == ["my dog is called Rex"]


async def test_a_near_duplicate_updates_the_existing_memory(store: BaseStore) -> None:
    book = MemoryBook(store, "carol")
    first, created = await book.add("I live in Berlin", now=NOW, duplicate_threshold=0.9)
    assert created
    second, created = await book.add(
        "I live in Berlin", now=NOW + timedelta(minutes=1), importance=0.8, duplicate_threshold=0.9
    )
    assert not created
    assert second.id == first.id
    assert second.importance == 0.8
    third, created = await book.add("my sister plays the violin", now=NOW, duplicate_threshold=0.9)
    assert created
    assert third.id != first.id
    assert len(await book.all()) == 2


async def test_recall_filters_by_score_counts_access_and_keeps_the_index(store: BaseStore) -> None:
    book = MemoryBook(store, "dave")
    await book.add("my favourite colour is green", now=NOW, importance=0.2)
    await book.add("unrelated words entirely", now=NOW)

    later = NOW + timedelta(hours=1)
    recalled = await book.recall("what colour is my favourite", limit=5, min_score=0.3, now=later)
    assert [memory.content for memory in recalled] == ["my favourite colour is green"]
    again = await book.recall("favourite colour", limit=5, min_score=0.3, now=later)
    assert len(again) == 1

    stored = await book.get(recalled[0].id)
    assert stored is not None
    assert stored.access_count == 2
    assert stored.last_accessed_at == later
    # Access tracking rewrites the item without re-embedding: it must still be searchable.
    assert (await book.search("favourite colour green", limit=1))[0].id == stored.id


async def test_update_reindexes_new_content_and_forget_removes_it(store: BaseStore) -> None:
    book = MemoryBook(store, "erin")
    memory, _ = await book.add("I work at Acme", now=NOW)
    fixed = await book.update(memory, now=NOW, content="I work at Globex", importance=0.7)
    assert fixed.content == "I work at Globex"
    found = await book.search("Globex", limit=1)
    assert found[0].id == memory.id
    assert found[0].importance == 0.7

    assert await book.forget(memory.id)
    assert not await book.forget(memory.id)
    assert await book.search("Globex", limit=5) == []

    await book.add("one thing", now=NOW)
    await book.add("another thing", now=NOW)
    assert await book.forget_all() == 2
    assert await book.all() == []


async def test_namespaces_are_per_user(store: BaseStore) -> None:
    await MemoryBook(store, "frank").add("likes chess", now=NOW)
    await MemoryBook(store, "grace").add("likes go", now=NOW)
    namespaces = await store.alist_namespaces(prefix=("users",))
    assert memory_namespace("frank") in namespaces
    assert memory_namespace("grace") in namespaces


async def _expiry(settings: Settings, key: str) -> datetime | None:
    """The stored expiry of one item, read straight from the database."""
    if settings.uses_postgres:
        conn = await asyncpg.connect(settings.postgres_conninfo)
        try:
            value = await conn.fetchval("SELECT expires_at FROM store WHERE key = $1", key)
        finally:
            await conn.close()
        return value if isinstance(value, datetime) else None
    with sqlite3.connect(store_sqlite_path(settings)) as conn:
        row = conn.execute("SELECT expires_at FROM store WHERE key = ?", (key,)).fetchone()
    if row is None or row[0] is None:
        return None
    parsed = datetime.fromisoformat(str(row[0]))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _expire_now(settings: Settings, key: str) -> None:
    """Move one item's expiry into the past, as the passing of MAI_MEMORY_TTL_DAYS would."""
    if settings.uses_postgres:
        conn = await asyncpg.connect(settings.postgres_conninfo)
        try:
            await conn.execute(
                "UPDATE store SET expires_at = NOW() - interval '1 day' WHERE key = $1", key
            )
        finally:
            await conn.close()
        return
    with sqlite3.connect(store_sqlite_path(settings)) as conn:
        conn.execute("UPDATE store SET expires_at = '2000-01-01 00:00:00' WHERE key = ?", (key,))


async def test_memories_get_the_ttl_reads_extend_it_and_the_sweep_removes_expired(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(memory_ttl_days=2)
    async with AsyncExitStack() as stack:
        store = await _open(settings, stack)
        book = MemoryBook(store, "heidi")
        kept, _ = await book.add("refreshed by reads", now=NOW)
        dropped, _ = await book.add("never read again", now=NOW)

        first = await _expiry(settings, kept.id)
        assert first is not None
        assert timedelta(days=1.9) < first - datetime.now(UTC) < timedelta(days=2.1)
        # SQLite stamps the refreshed expiry to the second.
        await asyncio.sleep(1.1)
        recalled = await book.recall("refreshed by reads", limit=1, min_score=0.5, now=NOW)
        assert [memory.id for memory in recalled] == [kept.id]
        refreshed = await _expiry(settings, kept.id)
        assert refreshed is not None
        assert refreshed > first

        await _expire_now(settings, dropped.id)
        assert await store.sweep_expired() == 1
        assert await book.get(dropped.id) is None
        assert await book.get(kept.id) is not None


async def test_without_a_ttl_memories_never_expire(store: BaseStore, settings: Settings) -> None:
    memory, _ = await MemoryBook(store, "ivan").add("kept forever", now=NOW)
    assert await _expiry(settings, memory.id) is None


async def test_an_index_built_for_another_size_stops_the_open(settings: Settings) -> None:
    embedder = HashEmbedder(size=64)
    async with AsyncExitStack() as stack:
        store = await open_memory_store(settings, stack, embedder.embed, 64)
        await MemoryBook(store, "alice").add("my dog is called Rex", now=NOW)
    smaller = HashEmbedder(size=32)
    async with AsyncExitStack() as stack:
        with pytest.raises(MemoryIndexMismatch, match="holds 64-dimensional vectors") as error:
            await open_memory_store(settings, stack, smaller.embed, 32, smaller.model_name)
    assert f"the embedding model {smaller.model_name} gives 32" in error.value.line
    # The model that built it opens it again, memories and all.
    async with AsyncExitStack() as stack:
        store = await open_memory_store(settings, stack, embedder.embed, 64)
        [found] = await MemoryBook(store, "alice").search("what is my dog called", limit=1)
    assert found.content == "my dog is called Rex"
