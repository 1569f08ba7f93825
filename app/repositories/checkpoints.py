"""SQL on the LangGraph checkpointer's own tables, for retention.

The savers have no API to drop old checkpoints of a thread, only whole threads, so this works
on their tables directly: SQLite (`checkpoints`, `writes`, in their own file) and PostgreSQL
(`checkpoints`, `checkpoint_blobs`, `checkpoint_writes`, in the app database). Checkpoint ids
sort by time, so "newest" is the largest id within a thread and namespace (subgraphs have
their own namespace, each keeps its own newest).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# The SQL below is assembled from these constants and a fixed set of table names only; every
# value (thread ids, counts) is a bound parameter.
# Ranked checkpoints of the selected threads: rn 1 is the newest of its thread and namespace.
_RANKED = """
    SELECT thread_id, checkpoint_ns, checkpoint_id,
           ROW_NUMBER() OVER (
               PARTITION BY thread_id, checkpoint_ns ORDER BY checkpoint_id DESC
           ) AS rn
    FROM checkpoints WHERE thread_id IN :threads
"""
_COLUMNS = "SELECT thread_id, checkpoint_ns, checkpoint_id"
_DOOMED = f"{_COLUMNS} FROM ({_RANKED}) ranked WHERE rn > :keep"
_KEPT = f"{_COLUMNS} FROM ({_RANKED}) ranked WHERE rn <= :keep"


@dataclass
class CheckpointPruning:
    """Rows removed (or, in a dry run, that would be) from the checkpointer's tables."""

    threads: int = 0
    checkpoints: int = 0
    writes: int = 0
    blobs: int = 0

    def add(self, other: CheckpointPruning) -> None:
        """Accumulate another batch's counts."""
        self.threads += other.threads
        self.checkpoints += other.checkpoints
        self.writes += other.writes
        self.blobs += other.blobs


class CheckpointRepository:
    """Prunes and deletes threads in the checkpointer's tables on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.writes_table = "checkpoint_writes" if self.postgres else "writes"

    async def _exists(self, connection: AsyncConnection) -> bool:
        # Before the first turn the saver has not created its tables yet.
        if self.postgres:
            found = await connection.scalar(text("SELECT to_regclass('checkpoints') IS NOT NULL"))
        else:
            found = await connection.scalar(
                text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'")
            )
        return bool(found)

    async def threads_with_history_over(self, keep: int, after: str, limit: int) -> list[str]:
        """Up to `limit` thread ids (in order, after `after`) with more than `keep` checkpoints
        in some namespace: the ones pruning would change."""
        async with self.engine.connect() as connection:
            if not await self._exists(connection):
                return []
            rows = await connection.execute(
                text(
                    "SELECT DISTINCT thread_id FROM ("
                    " SELECT thread_id FROM checkpoints WHERE thread_id > :after"
                    " GROUP BY thread_id, checkpoint_ns HAVING COUNT(*) > :keep"
                    ") over_limit ORDER BY thread_id LIMIT :limit"
                ),
                {"after": after, "keep": keep, "limit": limit},
            )
            return [str(row[0]) for row in rows]

    async def prune(
        self, threads: Collection[str], keep: int, *, dry_run: bool = False
    ) -> CheckpointPruning:
        """Keep the `keep` newest checkpoints of each thread and namespace (at least the
        newest: it holds the thread's state and any pending interrupt's writes); remove the
        rest with their pending writes and, on PostgreSQL, the channel blobs no kept
        checkpoint refers to. In a dry run, only count."""
        keep = max(keep, 1)
        if not threads:
            return CheckpointPruning()
        params = {"threads": list(threads), "keep": keep}
        counted = CheckpointPruning(threads=len(threads))
        async with self.engine.begin() as connection:
            if not await self._exists(connection):
                return CheckpointPruning()
            doomed_writes = (
                f"FROM {self.writes_table} WHERE thread_id IN :threads"
                f" AND (thread_id, checkpoint_ns, checkpoint_id) IN ({_DOOMED})"
            )
            doomed_checkpoints = (
                "FROM checkpoints WHERE thread_id IN :threads"
                f" AND (thread_id, checkpoint_ns, checkpoint_id) IN ({_DOOMED})"
            )
            # Blobs are shared by every checkpoint whose channel_versions name them.
            orphan_blobs = (
                "FROM checkpoint_blobs b WHERE b.thread_id IN :threads AND NOT EXISTS ("  # noqa: S608
                " SELECT 1 FROM checkpoints c"
                f" WHERE (c.thread_id, c.checkpoint_ns, c.checkpoint_id) IN ({_KEPT})"
                " AND c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns"
                " AND (c.checkpoint -> 'channel_versions' ->> b.channel) = b.version)"
            )
            if dry_run:
                counted.writes = await self._count(connection, doomed_writes, params)
                counted.checkpoints = await self._count(connection, doomed_checkpoints, params)
                if self.postgres:
                    counted.blobs = await self._count(connection, orphan_blobs, params)
                return counted
            counted.writes = await self._delete(connection, doomed_writes, params)
            counted.checkpoints = await self._delete(connection, doomed_checkpoints, params)
            if self.postgres:
                counted.blobs = await self._delete(connection, orphan_blobs, params)
        return counted

    async def delete_threads(self, threads: Collection[str]) -> int:
        """Remove every checkpoint, write and blob of these threads; the checkpoints removed."""
        if not threads:
            return 0
        tables = (
            ["checkpoint_writes", "checkpoint_blobs", "checkpoints"]
            if self.postgres
            else ["writes", "checkpoints"]
        )
        removed = 0
        async with self.engine.begin() as connection:
            if not await self._exists(connection):
                return 0
            for table in tables:
                removed = await self._delete(
                    connection,
                    f"FROM {table} WHERE thread_id IN :threads",
                    {"threads": list(threads)},
                )
        return removed

    async def _count(
        self, connection: AsyncConnection, where: str, params: dict[str, object]
    ) -> int:
        statement = text(f"SELECT COUNT(*) {where}").bindparams(
            bindparam("threads", expanding=True)
        )
        return int(await connection.scalar(statement, params) or 0)

    async def _delete(
        self, connection: AsyncConnection, where: str, params: dict[str, object]
    ) -> int:
        statement = text(f"DELETE {where}").bindparams(bindparam("threads", expanding=True))
        result = await connection.execute(statement, params)
        return int(result.rowcount or 0)
