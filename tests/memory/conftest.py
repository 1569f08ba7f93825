"""Memory tests on PostgreSQL need the pgvector extension (CI builds it: .ci/install-pgvector)."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import PostgresDatabase, unavailable


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
