"""Knowledge-base benchmark: ingestion throughput and search latency against plain qdrant-client.

Ingestion: synthetic text documents go through MAI's whole pipeline (store, parse, chunk, embed
with the real MiniLM model, keyword vectors, upsert with payload) and, as the baseline, the very
same chunk texts are embedded with fastembed and upserted with qdrant-client directly (dense
vector only, no payload). Both use Qdrant local mode, in memory by default (`--storage disk`
for the on-disk local mode MAI uses by default: it commits every point to SQLite, ~1-5 ms a
point on this class of machine, which then dominates both sides).

Search: the collection is filled to each size (10k, 100k chunks by default) by reusing the
vectors computed above (with a little noise), in local mode in memory (local mode searches
in memory either way; disk only slows down writes, by ~5 ms a point). MAI's search (query
embedding, owner filter, hybrid = dense + sparse prefetch fused by RRF; and dense alone) is timed
against the baseline: embed the query and `query_points` on a plain dense collection.

    uv run python bench/kb.py                      # 10k ingestion, latency at 10k and 100k
    uv run python bench/kb.py --sizes 10000 --ingest-chunks 2000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
from qdrant_client import AsyncQdrantClient
from qdrant_client import models as qm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.clock import SystemClock  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.core.db import create_engine, create_sessionmaker, upgrade_schema  # noqa: E402
from app.core.logging import configure_logging  # noqa: E402
from app.models import User  # noqa: E402
from app.repositories.vectors import ChunkPoint, chunk_point_id  # noqa: E402
from app.services.kb.chunking import SPECIAL_TOKENS, model_window  # noqa: E402
from app.services.kb.embeddings import create_embedder  # noqa: E402
from app.services.kb.parsing import parse_text  # noqa: E402
from app.services.kb.service import KnowledgeBase, Upload  # noqa: E402
from app.services.kb.sparse import document_vector  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_PATH = (ROOT / ".." / "shared" / "models" / "minilm-onnx-int8").resolve()
_COMMON_WORDS = (
    "the of and to in is for on with as by at from that this be are was it or an not which "
    "system data user service report value process model error network device policy team "
    "customer order invoice pump valve router sensor battery display firmware update backup"
)
COMMON = _COMMON_WORDS.split()


def make_documents(count: int, seed: int) -> list[str]:
    """Synthetic documents: paragraphs of sentences over common words and rare made-up terms."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "tor", "vel", "qu", "zan", "bri", "sol", "dex", "ny"]
    rare = sorted({"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(6000)})
    codes = [f"ERR-{rng.randint(1000, 9999)}" for _ in range(500)]
    documents = []
    for _ in range(count):
        paragraphs = []
        for _ in range(rng.randint(6, 10)):
            sentences = []
            for _ in range(rng.randint(3, 6)):
                words = [
                    rng.choice(rare) if rng.random() < 0.3 else rng.choice(COMMON)
                    for _ in range(rng.randint(8, 18))
                ]
                if rng.random() < 0.1:
                    words.append(rng.choice(codes))
                sentences.append(" ".join(words).capitalize() + ".")
            paragraphs.append(" ".join(sentences))
        documents.append("\n\n".join(paragraphs))
    return documents


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


async def timed(run: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    """Latencies of `repeat` sequential runs (after two warm-up runs)."""
    for _ in range(2):
        await run()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await run()
        samples.append(time.perf_counter() - start)
    return samples


async def ingest(args: argparse.Namespace, work: Path) -> tuple[list[str], np.ndarray]:
    """Measure ingestion; return the chunk texts and their vectors for the latency part."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=work / "mai",
        embedding_model=MODEL,
        embedding_model_path=args.model_path,
        kb_chunk_tokens=args.chunk_tokens,
        kb_chunk_overlap=args.chunk_tokens // 10,
        log_level="WARNING",
    )
    settings.data_dir.mkdir(parents=True)
    configure_logging(settings)
    engine = create_engine(settings)
    await upgrade_schema(engine)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        user = User(email="bench@example.com", password_hash="-")  # noqa: S106 (never signs in)
        session.add(user)
        await session.commit()
    storage = work / "mai-qdrant" if args.storage == "disk" else None
    qdrant = AsyncQdrantClient(path=str(storage)) if storage else AsyncQdrantClient(":memory:")
    embedder = create_embedder(settings)
    kb = KnowledgeBase(settings, sessionmaker, SystemClock(), qdrant, embedder)
    await kb.start(worker=False)
    await embedder.embed(["warm up the model"])

    # Enough documents for the requested number of chunks (about 4 chunks a document).
    documents: list[str] = []
    texts: list[str] = []
    sizes: list[int] = []
    seed = 0
    while len(texts) < args.ingest_chunks:
        batch = make_documents(50, seed)
        seed += 1
        for document in batch:
            _, chunks = kb.chunker.split(parse_text(document.encode()).blocks)
            documents.append(document)
            texts.extend(chunk.text for chunk in chunks)
            sizes.extend(
                len(kb.chunker.counter.spans(chunk.embed_text)) + SPECIAL_TOKENS for chunk in chunks
            )
            if len(texts) >= args.ingest_chunks:
                break
    window = model_window(args.model_path, MODEL) or 512
    ordered = sorted(sizes)

    def rank(q: float) -> int:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    print(
        f"chunk sizes (model tokens incl. special): {len(sizes)} chunks, p5/p50/p95 "
        f"{rank(0.05)}/{rank(0.5)}/{rank(0.95)}, over the {window}-token model window: "
        f"{sum(size > window for size in sizes) / len(sizes):.1%}",
        flush=True,
    )

    start = time.perf_counter()
    mai_chunks = 0
    for number, document in enumerate(documents):
        async with sessionmaker() as session:
            doc = await kb.upload(
                session, user.id, Upload(f"doc-{number}.txt", document.encode()), enqueue=False
            )
        done = await kb.process(doc.id)
        assert done is not None
        assert done.status == "ready", done.error
        mai_chunks += done.chunk_count
        if number % 200 == 199:
            print(f"  MAI: {mai_chunks} chunks ingested", file=sys.stderr, flush=True)
    mai_seconds = time.perf_counter() - start
    assert mai_chunks == len(texts), (mai_chunks, len(texts))
    await qdrant.close()
    await engine.dispose()

    from fastembed import TextEmbedding

    model = TextEmbedding(
        model_name=MODEL, specific_model_path=str(args.model_path), cache_dir=str(work / "fe")
    )
    list(model.embed(["warm up the model"]))
    plain_path = work / "plain-qdrant" if args.storage == "disk" else None
    plain = AsyncQdrantClient(path=str(plain_path)) if plain_path else AsyncQdrantClient(":memory:")
    await plain.create_collection(
        "plain", vectors_config=qm.VectorParams(size=384, distance=qm.Distance.COSINE)
    )
    start = time.perf_counter()
    vectors = np.array(list(model.embed(texts, batch_size=settings.embedding_batch_size)))
    for first in range(0, len(texts), 256):
        await plain.upsert(
            "plain",
            points=[
                qm.PointStruct(id=i, vector=vectors[i].tolist())
                for i in range(first, min(len(texts), first + 256))
            ],
        )
    plain_seconds = time.perf_counter() - start
    await plain.close()

    mai_rate, plain_rate = mai_chunks / mai_seconds, len(texts) / plain_seconds
    print(
        f"ingestion  {len(documents)} documents, {mai_chunks} chunks ({args.storage}): "
        f"MAI {mai_rate:,.0f} chunks/s ({mai_seconds:.1f} s), "
        f"baseline {plain_rate:,.0f} chunks/s ({plain_seconds:.1f} s), "
        f"ratio MAI/baseline {mai_rate / plain_rate:.2f}"
    )
    return texts, vectors


async def latency(
    args: argparse.Namespace, work: Path, size: int, texts: list[str], vectors: np.ndarray
) -> None:
    """Fill both collections to `size` chunks and time searches."""
    rng = np.random.default_rng(size)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=work / f"lat-{size}",
        embedding_model=MODEL,
        embedding_model_path=args.model_path,
        log_level="WARNING",
    )
    embedder = create_embedder(settings)
    mai_client = AsyncQdrantClient(":memory:")
    engine = create_engine(settings)
    kb = KnowledgeBase(settings, create_sessionmaker(engine), SystemClock(), mai_client, embedder)
    index = await kb.index()
    plain = AsyncQdrantClient(":memory:")
    await plain.create_collection(
        "plain", vectors_config=qm.VectorParams(size=384, distance=qm.Distance.COSINE)
    )
    owner = str(uuid.uuid4())
    others = [str(uuid.uuid4()) for _ in range(3)]
    mai_fill = plain_fill = 0.0
    for first in range(0, size, 1000):
        ids = range(first, min(size, first + 1000))
        base = vectors[[i % len(vectors) for i in ids]]
        noisy = base + rng.normal(0, 0.01, base.shape)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        chunk_texts = [f"{texts[i % len(texts)]} ref{i}" for i in ids]
        # A quarter of the chunks belong to the user searching; the rest to three others.
        users = [owner if i % 4 == 0 else others[i % 3] for i in ids]
        started = time.perf_counter()
        points = []
        for offset, i in enumerate(ids):
            indices, values = document_vector(chunk_texts[offset])
            document_id = uuid.UUID(int=i // 8)
            points.append(
                ChunkPoint(
                    id=chunk_point_id(document_id, i),
                    dense=noisy[offset].tolist(),
                    sparse_indices=indices,
                    sparse_values=values,
                    payload={
                        "user_id": users[offset],
                        "document_id": str(document_id),
                        "title": f"doc {i // 8}",
                        "filename": "bench.txt",
                        "tags": [],
                        "collection": None,
                        "chunk_index": i % 8,
                        "text": chunk_texts[offset],
                        "page": None,
                        "section": None,
                        "start": 0,
                        "end": len(chunk_texts[offset]),
                    },
                )
            )
        await index.upsert(points)
        mai_fill += time.perf_counter() - started
        started = time.perf_counter()
        await plain.upsert(
            "plain",
            points=[
                qm.PointStruct(id=i, vector=noisy[offset].tolist()) for offset, i in enumerate(ids)
            ],
        )
        plain_fill += time.perf_counter() - started

    from fastembed import TextEmbedding

    model = TextEmbedding(
        model_name=MODEL, specific_model_path=str(args.model_path), cache_dir=str(work / "fe")
    )
    pick = random.Random(size)
    queries = [" ".join(pick.choice(texts).split()[3:10]) for _ in range(args.queries)]
    cursor = {"mai": 0, "dense": 0, "plain": 0}

    def next_query(key: str) -> str:
        cursor[key] += 1
        return queries[cursor[key] % len(queries)]

    async def mai_hybrid() -> object:
        return await kb.search(owner, next_query("mai"), top_k=5, mode="hybrid")

    async def mai_dense() -> object:
        return await kb.search(owner, next_query("dense"), top_k=5, mode="dense")

    async def baseline() -> object:
        vector = (await asyncio.to_thread(lambda: list(model.embed([next_query("plain")]))))[0]
        return await plain.query_points("plain", query=vector.tolist(), limit=5)

    results = {}
    for name, run in (("baseline", baseline), ("MAI hybrid", mai_hybrid), ("MAI dense", mai_dense)):
        results[name] = percentiles(await timed(run, args.queries))
    base50, base95 = results["baseline"]
    print(
        f"search {size:>7,} chunks: baseline dense p50 {base50:.1f} ms p95 {base95:.1f} ms; "
        + "; ".join(
            f"{name} p50 {p50:.1f} ms ({p50 / base50:.2f}x) p95 {p95:.1f} ms ({p95 / base95:.2f}x)"
            for name, (p50, p95) in results.items()
            if name != "baseline"
        )
        + f"; fill MAI {size / mai_fill:,.0f} points/s vs plain {size / plain_fill:,.0f} points/s"
    )
    await mai_client.close()
    await plain.close()
    await engine.dispose()


async def main() -> None:
    """Parse flags and run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    parser.add_argument("--ingest-chunks", type=int, default=10000)
    parser.add_argument(
        "--storage",
        choices=["disk", "memory"],
        default="memory",
        help="Qdrant local mode for the ingestion part (disk adds a commit per point)",
    )
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--chunk-tokens", type=int, default=250, help="MiniLM reads 256 tokens")
    parser.add_argument("--model-path", type=Path, default=DEFAULT_MODEL_PATH)
    args = parser.parse_args()
    if not args.model_path.is_dir():
        raise SystemExit(f"the MiniLM model folder {args.model_path} is missing (--model-path)")
    with tempfile.TemporaryDirectory(prefix="mai-bench-kb-") as tmp:
        work = Path(tmp)
        texts, vectors = await ingest(args, work)
        for size in (int(s) for s in args.sizes.split(",") if s.strip()):
            await latency(args, work, size, texts, vectors)


if __name__ == "__main__":
    asyncio.run(main())
