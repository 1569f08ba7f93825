"""Knowledge-base benchmark: the embedded engine against Qdrant local mode and plain qdrant-client.

Ingestion: synthetic text documents go through MAI's whole pipeline (store, parse, chunk, embed
with the real MiniLM model, keyword vectors, upsert with payload) twice, once into the embedded
engine (Qdrant Edge, the default without MAI_QDRANT_URL) and once into Qdrant local mode (what
MAI used before; in memory by default, `--storage disk` for its on-disk form), and, as the
baseline, the very same chunk texts are embedded with fastembed and upserted with qdrant-client
directly (dense vector only, no payload).

Search: three stores are filled to each size (10k, 100k chunks by default) with the vectors
computed above (plus a little noise) and the same payloads: the embedded engine, MAI on Qdrant
local mode, and a plain dense qdrant-client local collection. Search latency is timed with the
query vectors computed beforehand (the target excludes the query embedding): MAI's hybrid
(dense + sparse prefetch fused by RRF, owner filter) and dense searches, and the plain baseline.
The embedded engine is timed right after the bulk write (new segments are scanned exactly) and
after its background optimizer has built the HNSW index.

Rerank: the cost per query of MAI_KB_RERANK=llm, one structured call to the chat model at
`--rerank-llm` (MAI_LLM_BASE_URL, else LM Studio's default) over MAI_KB_RERANK_CANDIDATES
passages: wall time and tokens per query, and the ratio to the embedded hybrid search.

    uv run python bench/kb.py                      # 10k ingestion, latency at 10k and 100k
    uv run python bench/kb.py --sizes 10000 --ingest-chunks 2000   # quicker
    ../shared/tools/local-llm/serve &  uv run python bench/kb.py --rerank-queries 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
from app.repositories.vectors import (  # noqa: E402
    ChunkPoint,
    VectorIndex,
    chunk_point_id,
)
from app.repositories.vectors_edge import EdgeIndex  # noqa: E402
from app.repositories.vectors_qdrant import QdrantIndex  # noqa: E402
from app.services.kb.chunking import SPECIAL_TOKENS, model_window  # noqa: E402
from app.services.kb.embeddings import create_embedder  # noqa: E402
from app.services.kb.parsing import parse_text  # noqa: E402
from app.services.kb.service import KnowledgeBase, Upload  # noqa: E402
from app.services.kb.sparse import document_vector, query_vector  # noqa: E402

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


def print_chunk_sizes(kb: KnowledgeBase, documents: list[str], model_path: Path | None) -> None:
    """Chunk-size statistics of the corpus: count, p5/p50/p95 model tokens (special tokens
    included) and the share over the embedding model's window."""
    sizes = [
        len(kb.chunker.counter.spans(chunk.embed_text)) + SPECIAL_TOKENS
        for document in documents
        for chunk in kb.chunker.split(parse_text(document.encode()).blocks)[1]
    ]
    if not sizes:
        return
    window = model_window(model_path, MODEL) or 512
    ordered = sorted(sizes)

    def rank(q: float) -> int:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    over = sum(size > window for size in sizes) / len(sizes)
    print(
        f"chunk sizes (model tokens incl. special): {len(sizes)} chunks, p5/p50/p95 "
        f"{rank(0.05)}/{rank(0.5)}/{rank(0.95)}, over the {window}-token model window: {over:.1%}",
        flush=True,
    )


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


async def ingest_with(
    args: argparse.Namespace, work: Path, engine_name: str, documents: list[str] | None
) -> tuple[float, int, list[str], list[str]]:
    """MAI's whole ingestion into one engine: seconds, chunks, documents and chunk texts."""
    settings = Settings(
        _env_file=None,
        data_dir=work / f"mai-{engine_name}",
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
    qdrant: AsyncQdrantClient | None = None
    if engine_name == "local-mode":
        storage = work / "mai-qdrant" if args.storage == "disk" else None
        qdrant = AsyncQdrantClient(path=str(storage)) if storage else AsyncQdrantClient(":memory:")
    embedder = create_embedder(settings)
    kb = KnowledgeBase(settings, sessionmaker, SystemClock(), qdrant, embedder)
    await kb.start(worker=False)
    await embedder.embed(["warm up the model"])

    texts: list[str] = []
    if documents is None:
        # Enough documents for the requested number of chunks (about 4 chunks a document).
        documents = []
        seed = 0
        while len(texts) < args.ingest_chunks:
            batch = make_documents(50, seed)
            seed += 1
            for document in batch:
                _, chunks = kb.chunker.split(parse_text(document.encode()).blocks)
                documents.append(document)
                texts.extend(chunk.text for chunk in chunks)
                if len(texts) >= args.ingest_chunks:
                    break
    else:
        for document in documents:
            _, chunks = kb.chunker.split(parse_text(document.encode()).blocks)
            texts.extend(chunk.text for chunk in chunks)
    print_chunk_sizes(kb, documents, args.model_path)

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
            print(f"  MAI {engine_name}: {mai_chunks} chunks", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    assert mai_chunks == len(texts), (mai_chunks, len(texts))
    await kb.stop()
    if qdrant is not None:
        await qdrant.close()
    await engine.dispose()
    return seconds, mai_chunks, documents, texts


async def ingest(args: argparse.Namespace, work: Path) -> tuple[list[str], np.ndarray]:
    """Measure ingestion; return the chunk texts and their vectors for the latency part."""
    edge_seconds, chunks, documents, texts = await ingest_with(args, work, "embedded", None)
    local_seconds, _, _, _ = await ingest_with(args, work, "local-mode", documents)

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
    vectors = np.array(list(model.embed(texts, batch_size=64)))
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

    edge_rate, local_rate = chunks / edge_seconds, chunks / local_seconds
    plain_rate = len(texts) / plain_seconds
    print(
        f"ingestion  {len(documents)} documents, {chunks} chunks: "
        f"MAI embedded {edge_rate:,.0f} chunks/s ({edge_seconds:.1f} s), "
        f"MAI local mode ({args.storage}) {local_rate:,.0f} chunks/s ({local_seconds:.1f} s), "
        f"plain qdrant-client {plain_rate:,.0f} chunks/s ({plain_seconds:.1f} s); "
        f"ratios embedded/local-mode {edge_rate / local_rate:.2f}, "
        f"embedded/plain {edge_rate / plain_rate:.2f}"
    )
    return texts, vectors


def bench_points(
    size: int, texts: list[str], vectors: np.ndarray, owner: str
) -> list[list[ChunkPoint]]:
    """`size` chunk points in batches of 1000: a quarter the searcher's, the rest three others'."""
    rng = np.random.default_rng(size)
    others = [str(uuid.uuid4()) for _ in range(3)]
    batches = []
    for first in range(0, size, 1000):
        ids = range(first, min(size, first + 1000))
        base = vectors[[i % len(vectors) for i in ids]]
        noisy = base + rng.normal(0, 0.01, base.shape)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        batch = []
        for offset, i in enumerate(ids):
            text = f"{texts[i % len(texts)]} ref{i}"
            indices, values = document_vector(text)
            document_id = uuid.UUID(int=i // 8)
            batch.append(
                ChunkPoint(
                    id=chunk_point_id(document_id, i),
                    dense=noisy[offset].tolist(),
                    sparse_indices=indices,
                    sparse_values=values,
                    payload={
                        "user_id": owner if i % 4 == 0 else others[i % 3],
                        "document_id": str(document_id),
                        "title": f"doc {i // 8}",
                        "filename": "bench.txt",
                        "tags": [],
                        "collection": None,
                        "collection_id": None,
                        "chunk_index": i % 8,
                        "text": text,
                        "page": None,
                        "section": None,
                        "start": 0,
                        "end": len(text),
                    },
                )
            )
        batches.append(batch)
    return batches


async def fill(index: VectorIndex, batches: list[list[ChunkPoint]]) -> float:
    """Write every batch; the points per second."""
    started = time.perf_counter()
    for batch in batches:
        await index.upsert(batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


def line(name: str, samples: list[float], base: tuple[float, float] | None) -> str:
    """`name p50 .. p95 ..` with the ratio to the baseline."""
    p50, p95 = percentiles(samples)
    ratio = f" ({p50 / base[0]:.2f}x/{p95 / base[1]:.2f}x)" if base else ""
    return f"{name} p50 {p50:.2f} ms p95 {p95:.2f} ms{ratio}"


async def latency(
    args: argparse.Namespace, work: Path, size: int, texts: list[str], vectors: np.ndarray
) -> float:
    """Fill the three stores to `size` chunks and time searches without the query embedding;
    the embedded hybrid p50 (seconds) is returned as the rerank part's baseline."""
    from fastembed import TextEmbedding

    owner = str(uuid.uuid4())
    batches = bench_points(size, texts, vectors, owner)
    model = TextEmbedding(
        model_name=MODEL, specific_model_path=str(args.model_path), cache_dir=str(work / "fe")
    )
    pick = random.Random(size)
    queries = [" ".join(pick.choice(texts).split()[3:10]) for _ in range(args.queries)]
    dense_queries = [v.tolist() for v in model.embed(queries)]
    sparse_queries = [query_vector(q) for q in queries]
    cursor = {"n": 0}

    def search_run(index: VectorIndex, mode: str) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            cursor["n"] += 1
            n = cursor["n"] % len(queries)
            return await index.search(
                user_id=owner, mode=mode, limit=5,  # type: ignore[arg-type]
                dense=dense_queries[n], sparse=sparse_queries[n],
            )  # fmt: skip

        return run

    plain = AsyncQdrantClient(":memory:")
    await plain.create_collection(
        "plain", vectors_config=qm.VectorParams(size=384, distance=qm.Distance.COSINE)
    )
    started = time.perf_counter()
    for batch in batches:
        await plain.upsert(
            "plain",
            points=[qm.PointStruct(id=p.id, vector=p.dense) for p in batch],
        )
    plain_fill = size / (time.perf_counter() - started)

    async def plain_run() -> object:
        cursor["n"] += 1
        return await plain.query_points(
            "plain", query=dense_queries[cursor["n"] % len(queries)], limit=5
        )

    base = percentiles(await timed(plain_run, args.queries))
    await plain.close()
    report = [f"plain qdrant-client dense p50 {base[0]:.2f} ms p95 {base[1]:.2f} ms"]

    edge = EdgeIndex(work / f"edge-{size}", "bench", 384)
    edge_fill = await fill(edge, batches)
    # The write path starts the optimizer in the background; let the scan-only case be timed
    # first, then wait for it to finish before timing the indexed case.
    scan = await timed(search_run(edge, "hybrid"), args.queries)
    report.append(line("embedded hybrid (just written)", scan, base))
    started = time.perf_counter()
    await edge.settle()
    optimize_seconds = time.perf_counter() - started
    hybrid = await timed(search_run(edge, "hybrid"), args.queries)
    report.append(line("embedded hybrid", hybrid, base))
    report.append(
        line("embedded dense", await timed(search_run(edge, "dense"), args.queries), base)
    )
    await edge.close()

    local_fill = 0.0
    if size <= args.local_mode_max:
        local_client = AsyncQdrantClient(":memory:")
        local = QdrantIndex(local_client, "bench", 384, location=":memory:", owns_client=True)
        local_fill = await fill(local, batches)
        repeat = max(3, min(args.queries, args.local_mode_queries))
        report.append(
            line("local-mode hybrid", await timed(search_run(local, "hybrid"), repeat), base)
        )
        report.append(
            line("local-mode dense", await timed(search_run(local, "dense"), repeat), base)
        )
        await local.close()
    print(
        f"search {size:>7,} chunks: "
        + "; ".join(report)
        + f"; fill embedded {edge_fill:,.0f} points/s (optimize {optimize_seconds:.1f} s), "
        + (f"local mode {local_fill:,.0f} points/s, " if local_fill else "local mode skipped, ")
        + f"plain {plain_fill:,.0f} points/s"
    )
    return statistics.median(hybrid)


async def rerank_cost(args: argparse.Namespace, texts: list[str], search_seconds: float) -> None:
    """Time MAI's reranker on `--rerank-queries` queries of MAI_KB_RERANK_CANDIDATES passages."""
    import httpx

    from app.core.llm import ChatModelProvider
    from app.services.kb.rerank import LlmReranker, RerankCost

    settings = Settings(
        _env_file=None,
        llm_base_url=args.rerank_llm,
        llm_model=os.environ.get("MAI_LLM_MODEL") or None,
        llm_max_retries=0,
        llm_timeout_seconds=300,
    )
    pick = random.Random(7)
    candidates = settings.kb_rerank_candidates
    async with httpx.AsyncClient() as http:
        reranker = LlmReranker(ChatModelProvider(settings, http).model)
        for _ in range(args.rerank_queries):
            shown = pick.sample(texts, candidates)
            query = " ".join(pick.choice(shown).split()[3:10])
            await reranker.rerank(query, list(range(candidates)), shown)
    cost = RerankCost.of(reranker.calls)
    if cost is None:
        print(f"rerank: not measured, no chat model answered at {args.rerank_llm}")
        return
    print(
        f"{cost.describe()}, {candidates} candidates; "
        f"{cost.p50_seconds / search_seconds:,.0f}x the embedded hybrid search p50"
        + (f"; {reranker.failures} call(s) failed" if reranker.failures else "")
    )


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
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--local-mode-max", type=int, default=100000, help="largest size timed on local mode"
    )
    parser.add_argument(
        "--local-mode-queries", type=int, default=10, help="searches timed on local mode (slow)"
    )
    parser.add_argument("--chunk-tokens", type=int, default=250, help="MiniLM reads 256 tokens")
    parser.add_argument("--model-path", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument(
        "--rerank-llm",
        default=os.environ.get("MAI_LLM_BASE_URL") or "http://localhost:1234/v1",
        help="OpenAI-compatible chat model the rerank cost is measured against",
    )
    parser.add_argument("--rerank-queries", type=int, default=10, help="0 skips the rerank part")
    args = parser.parse_args()
    if not args.model_path.is_dir():
        raise SystemExit(f"the MiniLM model folder {args.model_path} is missing (--model-path)")
    with tempfile.TemporaryDirectory(prefix="mai-bench-kb-") as tmp:
        work = Path(tmp)
        texts, vectors = await ingest(args, work)
        search_seconds = [
            await latency(args, work, size, texts, vectors)
            for size in (int(s) for s in args.sizes.split(",") if s.strip())
        ]
        if args.rerank_queries:
            await rerank_cost(args, texts, max(search_seconds))


if __name__ == "__main__":
    # Each document is parsed in a fork-server child, and Python 3.11's fork server re-runs the
    # parent's main script in every child (its main-module preload never receives the path).
    # This script imports the whole app at the top, about 3 s a child: without a file name,
    # the children skip it, as they do under `mai`, whose main module imports next to nothing.
    del sys.modules["__main__"].__file__
    asyncio.run(main())
