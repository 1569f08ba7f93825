"""The LangGraph store behind long-term memory: PostgreSQL + pgvector, or SQLite + sqlite-vec.

Both are LangGraph's own implementations, so graphs get the same `BaseStore` through
`Runtime.store` whichever database runs underneath; the semantic index embeds with the same
model as the knowledge base.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import aiosqlite
from langgraph.store.base import (
    BaseStore,
    GetOp,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchOp,
    TTLConfig,
)

from app.core.config import Settings, StartupError
from app.core.logging import get_logger
from app.core.metrics import MemoryOperation, record_memory_operations

# Each backend's store is imported where it is opened: psycopg, and numpy behind sqlite-vec,
# are large imports that a start does not need until memory opens.
if TYPE_CHECKING:
    from langgraph.store.postgres.aio import AsyncPostgresStore
    from langgraph.store.sqlite.aio import AsyncSqliteStore

log = get_logger(__name__)

EmbedTexts = Callable[[Sequence[str]], Awaitable[list[list[float]]]]

# The value field the semantic index embeds: a memory's text.
INDEXED_FIELDS = ["content"]
# Any fixed key, other than the checkpointer's: serialises the store's schema migrations.
_SETUP_LOCK_KEY = 4_172_031_554
MINUTES_PER_DAY = 24 * 60


@functools.lru_cache(maxsize=16)
def _query_vector(blob: bytes) -> tuple[Any, float]:
    import numpy as np

    vector = np.frombuffer(blob, dtype=np.float32)
    return vector, float(np.sqrt(vector @ vector))


def _cosine_distance(left: bytes | None, right: bytes | None) -> float | None:
    import numpy as np

    if left is None or right is None:
        return None
    stored = np.frombuffer(left, dtype=np.float32)
    # The store passes the query as the right argument of every row: parse it once.
    query, query_norm = _query_vector(right)
    denominator = float(np.sqrt(stored @ stored)) * query_norm
    return 1.0 - float(stored @ query) / denominator if denominator else 1.0


class VectorConnection(aiosqlite.Connection):
    """An aiosqlite connection that gives LangGraph's SQLite store its vector functions.

    The store loads the sqlite-vec extension, but Python builds without loadable-extension
    support (such as uv's standalone interpreters) cannot load it. There the one function the
    store's cosine search calls, `vec_distance_cosine`, is registered in Python instead.
    """

    async def enable_load_extension(self, value: bool) -> None:
        """Allow extension loading where this sqlite3 build can; a no-op elsewhere."""
        if hasattr(sqlite3.Connection, "enable_load_extension"):
            await super().enable_load_extension(value)

    async def load_extension(self, path: str) -> None:
        """Load the extension, or register its cosine distance in Python when that cannot be."""
        if hasattr(sqlite3.Connection, "enable_load_extension"):
            await super().load_extension(path)
            return
        await self.create_function("vec_distance_cosine", 2, _cosine_distance, deterministic=True)


async def connect_sqlite(path: str) -> aiosqlite.Connection:
    """An autocommit connection to the store's SQLite file, ready for vector search."""

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)

    conn = VectorConnection(connector, iter_chunk_size=64)
    await conn
    return conn


def _count(ops: Iterable[Op]) -> None:
    counts: dict[MemoryOperation, int] = {"read": 0, "search": 0, "write": 0, "delete": 0}
    for op in ops:
        if isinstance(op, GetOp):
            counts["read"] += 1
        elif isinstance(op, (SearchOp, ListNamespacesOp)):
            counts["search"] += 1
        elif isinstance(op, PutOp):
            counts["delete" if op.value is None else "write"] += 1
    for operation, count in counts.items():
        record_memory_operations(operation, count)


class MeteredStore(BaseStore):
    """A store that counts its operations on /metrics and hands the work to LangGraph's store.

    Every read and write, the graphs' through `Runtime.store` and the API's, goes through
    `batch`/`abatch`, so this one place meters them all.
    """

    def __init__(self, inner: AsyncPostgresStore | AsyncSqliteStore) -> None:
        self.inner = inner
        # Both stores keep expiry times and sweep them; LangGraph's AsyncSqliteStore only hides
        # its `supports_ttl = True` behind BaseStore's False in its class order.
        self.supports_ttl = True
        self.ttl_config = inner.ttl_config

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations synchronously (LangGraph's sync API; the service is async)."""
        ops = list(ops)
        _count(ops)
        return self.inner.batch(ops)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations."""
        ops = list(ops)
        _count(ops)
        return await self.inner.abatch(ops)

    async def sweep_expired(self) -> int:
        """Delete the memories whose TTL has passed; how many there were."""
        if self.inner.ttl_config is None:
            return 0
        return await self.inner.sweep_ttl()


def _sqlite_file(settings: Settings) -> Path:
    app_db = settings.sqlite_path
    directory = app_db.parent if app_db is not None else settings.data_dir
    return directory / "memory.db"


def store_sqlite_path(settings: Settings) -> str:
    """The SQLite file holding the store: beside the app database, in its own file."""
    path = _sqlite_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path.resolve())


class MemoryIndexMismatch(StartupError):
    """The store's semantic index holds vectors of another size than the embedding model's."""

    label = "memory store error"


# The tables LangGraph's stores create (both backends use these names).
STORE_TABLES = ("store", "store_vectors", "store_migrations", "vector_migrations")


def _sqlite_dimension(path: Path) -> int | None:
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'store_vectors'"
        ).fetchone()
        if exists is None:
            return None
        # The store keeps each vector as packed float32 (sqlite-vec's format): 4 bytes a value.
        row = conn.execute(
            "SELECT length(embedding) FROM store_vectors WHERE embedding IS NOT NULL LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]) // 4 if row is not None and row[0] else None


async def _postgres_dimension(conninfo: str) -> int | None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(conninfo, connect_timeout=10) as conn:
        cursor = await conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass('store_vectors') AND attname = 'embedding'"
        )
        row = await cursor.fetchone()
    # The column is declared with the index's size, e.g. vector(384) or halfvec(768).
    match = re.search(r"\((\d+)\)", str(row[0])) if row is not None else None
    return int(match.group(1)) if match else None


async def stored_dimension(settings: Settings) -> int | None:
    """The size of the vectors the store's semantic index was built with; None without one."""
    if settings.uses_postgres:
        conninfo = settings.postgres_conninfo
        assert conninfo is not None
        return await _postgres_dimension(conninfo)
    return _sqlite_dimension(_sqlite_file(settings))


def check_dimension(settings: Settings, held: int | None, dims: int, model: str) -> None:
    """Stop the start when the index holds `held`-sized vectors and the model gives `dims`."""
    if held is None or held == dims:
        return
    if settings.uses_postgres:
        where = f"drop the tables {', '.join(STORE_TABLES)} from the database"
    else:
        where = f"move {_sqlite_file(settings).resolve()} away"
    raise MemoryIndexMismatch(
        f"the memory store's index holds {held}-dimensional vectors but the embedding model "
        f"{model} gives {dims}: set MAI_EMBEDDING_MODEL (and MAI_EMBEDDING_MODEL_PATH) back to "
        f"the model that built it, or export the memories (GET /api/v1/memory/export) and "
        f"{where} to start a new store"
    )


def ttl_config(settings: Settings) -> TTLConfig:
    """Expiry, refreshed on every read: MAI_MEMORY_TTL_DAYS for every item, or (unset) only
    for items written with a ttl of their own (the store API's `ttl`); the sweeper runs hourly
    either way."""
    config: TTLConfig = {"refresh_on_read": True, "sweep_interval_minutes": 60}
    if settings.memory_ttl_days is not None:
        config["default_ttl"] = settings.memory_ttl_days * MINUTES_PER_DAY
    return config


async def open_memory_store(
    settings: Settings,
    stack: AsyncExitStack,
    embed: EmbedTexts,
    dims: int,
    model: str = "configured",
) -> MeteredStore:
    """Open and migrate the store for this deployment; its cleanup is registered on `stack`.

    `embed` turns texts into `dims`-sized vectors (the knowledge base's model `model` in the
    service, a deterministic function in tests). An index built with another size stops the
    start (MemoryIndexMismatch): its vectors could not be compared with the model's.
    """
    check_dimension(settings, await stored_dimension(settings), dims, model)

    async def embed_texts(texts: Sequence[str]) -> list[list[float]]:
        return await embed(texts)

    ttl = ttl_config(settings)
    store: AsyncPostgresStore | AsyncSqliteStore
    if settings.uses_postgres:
        from langgraph.store.postgres.aio import AsyncPostgresStore
        from langgraph.store.postgres.base import PostgresIndexConfig
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        conninfo = settings.postgres_conninfo
        assert conninfo is not None
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=max(2, settings.database_pool_size // 2),
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=False,
        )
        await pool.open(wait=True, timeout=30)
        stack.push_async_callback(pool.close)
        pg_index: PostgresIndexConfig = {
            "dims": dims,
            "embed": embed_texts,
            "fields": INDEXED_FIELDS,
            "distance_type": "cosine",
        }
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK_KEY,))
            try:
                await AsyncPostgresStore(conn, index=pg_index, ttl=ttl).setup()
                # Exact search, without the HNSW index LangGraph's setup creates (its "flat"
                # option is rejected by this version's setup). Every search is within one
                # user's namespace, whose primary-key range keeps the exact scan small; the
                # HNSW index missed the answers at 10k memories (recall@5 0.03 against 0.95
                # exact, bench/memory.py), and across many users it hands back approximate
                # candidates before the namespace filter drops other users' vectors.
                await conn.execute("DROP INDEX IF EXISTS store_vectors_embedding_idx")
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))
        store = AsyncPostgresStore(pool, index=pg_index, ttl=ttl)
    else:
        from langgraph.store.sqlite.aio import AsyncSqliteStore
        from langgraph.store.sqlite.base import SqliteIndexConfig

        conn = await connect_sqlite(store_sqlite_path(settings))
        stack.push_async_callback(conn.close)
        await conn.execute("PRAGMA busy_timeout=30000")
        await conn.execute("PRAGMA journal_mode=WAL")
        # LangGraph's SQLite store reads the indexed paths from "text_fields" (and embeds the
        # whole JSON value without it), unlike the IndexConfig "fields" the other stores read.
        sqlite_index = cast(
            SqliteIndexConfig,
            {
                "dims": dims,
                "embed": embed_texts,
                "fields": INDEXED_FIELDS,
                "text_fields": INDEXED_FIELDS,
            },
        )
        store = AsyncSqliteStore(conn, index=sqlite_index, ttl=ttl)
        await store.setup()
    await store.start_ttl_sweeper()
    stack.push_async_callback(store.stop_ttl_sweeper, 10.0)
    log.info("memory_store_opened", backend="postgresql" if settings.uses_postgres else "sqlite")
    return MeteredStore(store)
