"""What checkpoint retention saves: the checkpointer's database after N turns over M
conversations, with and without pruning, and how long pruning takes.

The assistant graph runs in-process on the real SQLite checkpointer (a file, as embedded MAI
uses it) with a zero-latency scripted model (tests/fake_llm.py). Two databases get the same
turns: one never pruned (the baseline), one pruned every 100 turns the way the background
sweeper would (MAI_CHECKPOINT_HISTORY, default 20). Prints the data each holds (pages in use,
which is what a VACUUM would leave) and the file size (freed pages are reused, not returned),
the ratio to the baseline, and the time of one pruning pass over the never-pruned database:
the worst case the sweeper meets.

    uv run python bench/retention.py [--turns 1000] [--conversations 50] [--history 20]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiosqlite
from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from sqlalchemy.ext.asyncio import create_async_engine

from app.repositories.checkpoints import CheckpointPruning, CheckpointRepository
from graphs.assistant import Context, builder
from tests.fake_llm import responding

ANSWER = "Here is a fairly ordinary answer of a few sentences. " * 6


def _reply(messages: list[BaseMessage]) -> str:
    if messages and '{"route"' in str(messages[0].content):
        return '{"route": "direct"}'
    return ANSWER


async def _prune_all(path: Path, history: int, batch: int = 200) -> CheckpointPruning:
    """One pass over every thread, in batches, as app.services.retention does it."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    repository = CheckpointRepository(engine)
    total = CheckpointPruning()
    after = ""
    try:
        while threads := await repository.threads_with_history_over(history, after, batch):
            after = threads[-1]
            total.add(await repository.prune(threads, history))
    finally:
        await engine.dispose()
    return total


async def _size(path: Path) -> tuple[int, int]:
    """Bytes of pages in use, and of the file, after folding the WAL into it."""
    async with aiosqlite.connect(path) as conn:
        await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = (await (await conn.execute("PRAGMA page_count")).fetchone() or (0,))[0]
        free = (await (await conn.execute("PRAGMA freelist_count")).fetchone() or (0,))[0]
        size = (await (await conn.execute("PRAGMA page_size")).fetchone() or (0,))[0]
    return (pages - free) * size, path.stat().st_size


async def _load(path: Path, turns: int, conversations: int, prune_history: int | None) -> None:
    """Run the turns round-robin over the conversations, pruning every 100 turns if asked."""
    threads = [str(uuid.uuid4()) for _ in range(conversations)]
    model = responding(_reply)
    async with aiosqlite.connect(path) as conn:
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        graph = builder.compile(checkpointer=saver)
        for turn in range(turns):
            config: Any = {"configurable": {"thread_id": threads[turn % conversations]}}
            await graph.ainvoke(
                {"messages": [HumanMessage(f"Question {turn}: what about item {turn}?")]},
                config,
                context=Context(llm=model),
            )
            if prune_history is not None and (turn + 1) % 100 == 0:
                await _prune_all(path, prune_history)


async def main() -> None:
    """Load both databases, prune, and print sizes, ratios and pruning time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--history", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mai-bench-retention-") as folder:
        kept = Path(folder) / "unpruned.db"
        pruned = Path(folder) / "pruned.db"
        started = time.perf_counter()
        await _load(kept, args.turns, args.conversations, None)
        load_seconds = time.perf_counter() - started
        await _load(pruned, args.turns, args.conversations, args.history)
        await _prune_all(pruned, args.history)
        base_used, base_file = await _size(kept)
        used, file = await _size(pruned)
        started = time.perf_counter()
        removed = await _prune_all(kept, args.history)
        prune_seconds = time.perf_counter() - started
    mb = 1024 * 1024
    print(
        f"{args.turns} turns over {args.conversations} conversations "
        f"(loading one database took {load_seconds:.0f} s); MAI_CHECKPOINT_HISTORY={args.history}"
    )
    print(f"without pruning  data {base_used / mb:7.1f} MB  file {base_file / mb:7.1f} MB")
    print(
        f"with pruning     data {used / mb:7.1f} MB  file {file / mb:7.1f} MB  "
        f"ratio {used / base_used:.2f} (data), {file / base_file:.2f} (file)"
    )
    print(
        f"one pruning pass over the unpruned database: {prune_seconds:.2f} s, removed "
        f"{removed.checkpoints} checkpoints and {removed.writes} writes from "
        f"{removed.threads} threads"
    )


if __name__ == "__main__":
    asyncio.run(main())
