"""Long-term memory: recall quality and recall latency with the real offline MiniLM model.

Quality: the labelled set in bench/memory_set.py (100 memories about one user, 40 paraphrased
questions each answered by one memory). recall@5 is the share of questions whose memory is among
the five the store returns, raw (`MemoryBook.search`) and as the assistant recalls
(`MemoryBook.recall`: MAI_MEMORY_MIN_SCORE, importance-weighted).

Latency: one user with 1,000 and then 10,000 memories (the labelled 100 plus generated filler),
p50/p95 of one recall (query embedding + vector search + access tracking), against the baseline
of embedding the query alone, measured in the same run.

    uv run python bench/memory.py [--backend sqlite|postgres|both] [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

from langgraph.store.base import PutOp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.config import Settings  # noqa: E402
from app.core.store import open_memory_store  # noqa: E402
from app.services.kb.embeddings import Embedder, create_embedder  # noqa: E402
from bench.common import percentile, scratch_database  # noqa: E402
from bench.memory_set import MEMORIES, QUESTIONS  # noqa: E402
from graphs.memory import Memory, MemoryBook  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_PATH = (ROOT / ".." / "shared" / "models" / "minilm-onnx-int8").resolve()
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SUBJECTS = ["a colleague", "the neighbour", "an old friend", "a cousin", "the landlord", "a client"]
THINGS = ["a red bicycle", "a spreadsheet", "a blue umbrella", "a cookbook", "a train ticket"]
VERBS = ["borrowed", "mentioned", "returned", "forgot", "recommended", "lost"]


def filler(n: int) -> str:
    """A distinct but plausible memory that answers none of the questions."""
    subject = SUBJECTS[n % len(SUBJECTS)]
    verb = VERBS[(n // len(SUBJECTS)) % len(VERBS)]
    thing = THINGS[(n // (len(SUBJECTS) * len(VERBS))) % len(THINGS)]
    return f"On day {n} {subject} {verb} {thing} of the user."


async def fill(book: MemoryBook, embedder: Embedder, total: int) -> list[str]:
    """The labelled memories plus filler up to `total`; their ids in MEMORIES order first."""
    ids: list[str] = []
    texts = list(MEMORIES) + [filler(n) for n in range(total - len(MEMORIES))]
    for start in range(0, len(texts), 500):
        ops = []
        for text in texts[start : start + 500]:
            memory = Memory(
                id=str(uuid.uuid4()),
                content=text,
                kind="fact",
                importance=0.5,
                created_at=NOW,
                updated_at=NOW,
                last_accessed_at=None,
                access_count=0,
                conversation_id=None,
            )
            ids.append(memory.id)
            ops.append(PutOp(book.namespace, memory.id, memory.to_value()))
        await book.store.abatch(ops)
    return ids


async def run_backend(backend: str, embedder: Embedder, sizes: list[int], work: Path) -> None:
    """Quality and latency on one backend."""
    values: dict[str, object] = {"data_dir": work / backend, "log_level": "WARNING"}
    async with AsyncExitStack() as stack:
        if backend == "postgres":
            # The store creates its own tables: the app schema is not needed.
            values["database_url"] = await stack.enter_async_context(
                scratch_database(migrate=False)
            )
        settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
        store = await open_memory_store(settings, stack, embedder.embed, await embedder.dimension())
        print(f"\n== {backend} ==")
        for size in sizes:
            book = MemoryBook(store, f"bench-{size}")
            started = time.perf_counter()
            ids = await fill(book, embedder, size)
            print(f"{size} memories stored in {time.perf_counter() - started:.1f} s")
            raw_hits = recalled_hits = 0
            for question, answer in QUESTIONS:
                found = await book.search(question, limit=5)
                raw_hits += ids[answer] in {memory.id for memory in found}
                recalled = await book.recall(
                    question, limit=5, min_score=settings.memory_min_score, now=NOW
                )
                recalled_hits += ids[answer] in {memory.id for memory in recalled}
            n = len(QUESTIONS)
            print(
                f"recall@5 ({size} memories, {n} questions): search {raw_hits / n:.2f}, "
                f"as recalled (min score {settings.memory_min_score}) {recalled_hits / n:.2f}"
            )
            recall_ms: list[float] = []
            embed_ms: list[float] = []
            for _ in range(3):
                for question, _answer in QUESTIONS:
                    started = time.perf_counter()
                    await embedder.embed([question])
                    embed_ms.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    await book.recall(
                        question, limit=5, min_score=settings.memory_min_score, now=NOW
                    )
                    recall_ms.append((time.perf_counter() - started) * 1000)
            p50, p95 = percentile(recall_ms, 0.5), percentile(recall_ms, 0.95)
            base = statistics.median(embed_ms)
            print(
                f"recall latency ({size} memories): p50 {p50:.1f} ms, p95 {p95:.1f} ms; "
                f"query embedding alone p50 {base:.1f} ms (ratio {p50 / base:.1f}x)"
            )


async def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--model-path", type=Path, default=DEFAULT_MODEL_PATH)
    args = parser.parse_args()
    if not args.model_path.is_dir():
        raise SystemExit(f"the MiniLM model folder {args.model_path} is missing (--model-path)")
    sizes = [int(part) for part in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = Settings(
            _env_file=None,
            data_dir=work,
            embedding_model=MODEL,
            embedding_model_path=args.model_path,
            log_level="WARNING",
        )
        embedder = create_embedder(settings)
        await embedder.embed(["warm up the model"])
        backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
        for backend in backends:
            await run_backend(backend, embedder, sizes, work)


if __name__ == "__main__":
    asyncio.run(main())
