"""The LangGraph checkpointer: SQLite next to the embedded database, or PostgreSQL."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from app.core.config import Settings

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

# Any fixed key: serialises the checkpointer's schema migrations across processes starting at once.
_SETUP_LOCK_KEY = 4_172_031_553


def checkpoint_sqlite_path(settings: Settings) -> str:
    """The SQLite file holding checkpoints: beside the app database, in its own file.

    A separate file keeps checkpoint writes from queueing behind app-table writes on SQLite's
    single writer lock.
    """
    app_db = settings.sqlite_path
    directory = app_db.parent if app_db is not None else settings.data_dir
    directory.mkdir(parents=True, exist_ok=True)
    return str((directory / "checkpoints.db").resolve())


async def _try_setup_lock(conn: Any) -> bool:
    row = await (
        await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_SETUP_LOCK_KEY,))
    ).fetchone()
    return bool(row and row["ok"])


async def open_checkpointer(settings: Settings, stack: AsyncExitStack) -> BaseCheckpointSaver[Any]:
    """Open the checkpointer for this deployment and register its cleanup on `stack`.

    Each backend's libraries are imported in its own branch: psycopg and its pool are a large
    import that a start on SQLite does not need, and the other way round."""
    if settings.uses_postgres:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        conninfo = settings.postgres_conninfo
        assert conninfo is not None
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=settings.database_pool_size,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=False,
            # A connection the server dropped (a restart) is replaced, not handed to a write.
            check=AsyncConnectionPool.check_connection,
        )
        await pool.open(wait=True, timeout=30)
        stack.push_async_callback(pool.close)
        async with pool.connection() as conn:
            # Try, don't block: the setup's CREATE INDEX CONCURRENTLY waits for every open
            # transaction, a blocked pg_advisory_lock call included, which would deadlock two
            # processes starting together.
            while not await _try_setup_lock(conn):  # noqa: ASYNC110 (polls another process)
                await asyncio.sleep(0.2)
            try:
                await AsyncPostgresSaver(conn).setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))
        return AsyncPostgresSaver(pool)
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    conn = await aiosqlite.connect(checkpoint_sqlite_path(settings), timeout=30)
    stack.push_async_callback(conn.close)
    await conn.execute("PRAGMA busy_timeout=30000")
    await conn.execute("PRAGMA synchronous=NORMAL")
    saver = AsyncSqliteSaver(conn)
    await saver.setup()
    return saver
