"""Checkpoint bookkeeping the engine needs: where a thread stands, and removing a run's work.

LangGraph's savers delete whole threads only; a rollback removes just the checkpoints a run
wrote. Checkpoint ids are time-ordered (uuid6), so "written by the run" is "newer than the
thread's latest checkpoint when the run started".
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph


async def latest_checkpoint_id(
    graph: CompiledStateGraph[Any, Any, Any, Any], config: RunnableConfig
) -> str | None:
    """The id of the thread's newest checkpoint (None: the thread has none)."""
    saver = graph.checkpointer
    if not isinstance(saver, BaseCheckpointSaver):
        return None
    found = await saver.aget_tuple(
        {"configurable": {"thread_id": config["configurable"]["thread_id"], "checkpoint_ns": ""}}
    )
    if found is None:
        return None
    return str(found.config["configurable"].get("checkpoint_id") or "") or None


async def delete_checkpoints_after(
    saver: BaseCheckpointSaver[Any], thread_id: str, checkpoint_id: str | None
) -> None:
    """Delete the thread's checkpoints newer than `checkpoint_id` (all of them when it is
    empty or None: the thread had none before)."""
    if not checkpoint_id:
        await saver.adelete_thread(thread_id)
        return
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    if isinstance(saver, AsyncPostgresSaver):
        async with saver._cursor() as cursor:
            for table in ("checkpoint_writes", "checkpoints"):
                await cursor.execute(
                    f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_id > %s",  # noqa: S608
                    (thread_id, checkpoint_id),
                )
        return
    if isinstance(saver, AsyncSqliteSaver):
        async with saver.lock:
            for table in ("writes", "checkpoints"):
                await saver.conn.execute(
                    f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id > ?",  # noqa: S608
                    (thread_id, checkpoint_id),
                )
            await saver.conn.commit()
        return
    # Another saver (in-memory in tests): go through its public listing.
    from langgraph.checkpoint.memory import InMemorySaver

    if isinstance(saver, InMemorySaver):
        for ns in list(saver.storage.get(thread_id, {})):
            for cid in [c for c in saver.storage[thread_id][ns] if c > checkpoint_id]:
                del saver.storage[thread_id][ns][cid]


async def copy_checkpoints(saver: BaseCheckpointSaver[Any], source: str, target: str) -> None:
    """Copy every checkpoint of a thread (all namespaces, with their pending writes) to
    another thread id, oldest first so each keeps its parent; the savers MAI uses do not
    implement LangGraph's own `acopy_thread`."""
    found = [item async for item in saver.alist({"configurable": {"thread_id": source}})]
    for item in sorted(found, key=lambda t: str(t.config["configurable"]["checkpoint_id"])):
        configurable: dict[str, Any] = {
            "thread_id": target,
            "checkpoint_ns": item.config["configurable"].get("checkpoint_ns", ""),
        }
        parent = ((item.parent_config or {}).get("configurable") or {}).get("checkpoint_id")
        if parent:
            configurable["checkpoint_id"] = parent
        written = await saver.aput(
            RunnableConfig(configurable=configurable),
            item.checkpoint,
            item.metadata,
            dict(item.checkpoint["channel_versions"]),
        )
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in item.pending_writes or []:
            by_task.setdefault(task_id, []).append((channel, value))
        for task_id, writes in by_task.items():
            await saver.aput_writes(written, writes, task_id)
