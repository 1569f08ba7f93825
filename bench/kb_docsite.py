"""Retrieval on a documentation site: hit@1 / hit@5 and chunk sizes with the real MiniLM model.

The pages of `tests/kb/docsite_corpus.py` (Sphinx and DocBook output with navigation bars,
sidebars, tables of contents, admonitions, parameter lists and a long table) go through MAI's
whole pipeline with default settings; then every labelled question is searched in each mode and
the rank of the answering page is scored. It also prints the chunk-size statistics (tokens
counted with the model's tokenizer) and how many chunks carry page chrome.

    uv run python bench/kb_docsite.py [--model-path ../shared/models/minilm-onnx-int8]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from pathlib import Path

from qdrant_client import AsyncQdrantClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.clock import SystemClock  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.core.db import create_engine, create_sessionmaker, upgrade_schema  # noqa: E402
from app.core.logging import configure_logging  # noqa: E402
from app.models import User  # noqa: E402
from app.services.kb.chunking import token_counter_for  # noqa: E402
from app.services.kb.embeddings import create_embedder  # noqa: E402
from app.services.kb.service import KnowledgeBase, Upload  # noqa: E402
from tests.kb.docsite_corpus import PAGES, questions, render  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
WINDOW = 256  # what all-MiniLM-L6-v2 was trained to read
CHROME = re.compile(
    r"Created using Sphinx|Previous topic|Next topic|Quick search|Table of Contents|"
    r"\bPrev\b|\bHome\b|\bNavigation\b|General Index|\u00b6"
)


def default_model_path() -> Path:
    """The shared MiniLM folder next to the checkout (or next to its parent folder)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        candidate = base / "shared" / "models" / "minilm-onnx-int8"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "models" / "minilm-onnx-int8"


def quantile(values: list[int], q: float) -> int:
    """The q-quantile of the values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(model_path: Path, work: Path, *, misses: bool = False) -> None:
    """Ingest the site, print chunk statistics and hit rates."""
    settings = Settings(
        _env_file=None,
        data_dir=work / "mai",
        embedding_model=MODEL,
        embedding_model_path=model_path,
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
    qdrant = AsyncQdrantClient(":memory:")
    kb = KnowledgeBase(settings, sessionmaker, SystemClock(), qdrant, create_embedder(settings))
    await kb.start(worker=False)
    ids: dict[str, str] = {}
    titles = []
    for page in PAGES:
        async with sessionmaker() as session:
            document = await kb.upload(
                session, user.id, Upload(f"{page.slug}.html", render(page)), enqueue=False
            )
        done = await kb.process(document.id)
        assert done is not None
        assert done.status == "ready", done.error
        ids[str(done.id)] = page.slug
        titles.append(done.title)
    index = await kb.index()
    records, _ = await qdrant.scroll(index.name, limit=10_000, with_payload=True)
    counter = token_counter_for(model_path)
    sizes = []
    chrome = 0
    for record in records:
        payload = record.payload or {}
        text = str(payload.get("text", ""))
        context = " \u203a ".join(
            [str(payload.get("title", "")), *list(payload.get("heading_path") or [])]
        )
        embedded = f"{context}\n{text}" if "heading_path" in payload else text
        sizes.append(len(counter.spans(embedded)) + 2)
        chrome += bool(CHROME.search(text))
    print(f"documents: {len(PAGES)}, titles: {titles[:3]}...")
    print(
        f"chunks: {len(sizes)}, tokens p5/p50/p95: {quantile(sizes, 0.05)}/"
        f"{quantile(sizes, 0.5)}/{quantile(sizes, 0.95)}, under 50: "
        f"{sum(s < 50 for s in sizes) / len(sizes):.0%}, over the {WINDOW}-token window: "
        f"{sum(s > WINDOW for s in sizes) / len(sizes):.0%}, with page chrome: {chrome}"
    )
    labelled = questions()
    for mode in ("dense", "sparse", "hybrid"):
        scores: dict[str, list[int]] = {"keyword": [], "paraphrased": []}
        for question, slug, keyword in labelled:
            hits = await kb.search(str(user.id), question, top_k=10, mode=mode)
            ranked = [ids.get(hit.document_id) for hit in hits]
            rank = ranked.index(slug) + 1 if slug in ranked else 99
            if misses and rank > 1:
                print(f"  {mode} rank {rank}: {question!r} (top: {ranked[:3]})")
            scores["keyword" if keyword else "paraphrased"].append(rank)
        line = []
        for kind, ranks in scores.items():
            hit1 = sum(r == 1 for r in ranks) / len(ranks)
            hit5 = sum(r <= 5 for r in ranks) / len(ranks)
            line.append(f"{kind} ({len(ranks)}) hit@1 {hit1:.2f} hit@5 {hit5:.2f}")
        print(f"{mode:>6}: " + "; ".join(line))
    await kb.stop()
    await qdrant.close()
    await engine.dispose()


def main() -> None:
    """Parse arguments and run the benchmark in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-path", type=Path, default=default_model_path())
    parser.add_argument("--misses", action="store_true", help="list questions not at rank 1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(args.model_path.resolve(), Path(folder), misses=args.misses))


if __name__ == "__main__":
    main()
