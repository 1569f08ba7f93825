"""Memory tests on PostgreSQL need the pgvector extension (CI builds it: .ci/install-pgvector)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from app.core.config import Settings
from app.core.store import open_memory_store
from graphs.assistant import builder
from tests.conftest import PostgresDatabase, unavailable
from tests.kb.support import HashEmbedder

Agent = CompiledStateGraph[Any, Any, Any, Any]


@pytest.fixture(autouse=True)
async def _pgvector(backend: str, postgres_database: PostgresDatabase | None) -> None:
    """Report the PostgreSQL variant unavailable (a failure in CI) without pgvector."""
    if backend != "postgres" or postgres_database is None:
        return
    conn = await asyncpg.connect(postgres_database.conninfo)
    try:
        available = await conn.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
        )
    finally:
        await conn.close()
    if not available:
        unavailable("the pgvector extension (run .ci/install-pgvector)")


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[BaseStore]:
    """The backend's memory store, opened the way the service opens it, with the deterministic
    embedding."""
    embedder = HashEmbedder()
    async with AsyncExitStack() as stack:
        yield await open_memory_store(settings, stack, embedder.embed, await embedder.dimension())


@pytest.fixture
def agent(store: BaseStore) -> Agent:
    """The assistant compiled with a checkpointer and the memory store, as the service does."""
    return builder.compile(checkpointer=InMemorySaver(), store=store)
