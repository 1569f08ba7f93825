"""Retrieval quality with the real MiniLM model: hybrid search is at least as good as dense
and as sparse, better on questions that hinge on an exact code or name, and the measured hit
rates do not regress."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.config import Settings
from app.services.kb.evaluation import load_questions
from tests.conftest import AppFactory, client_for, register, unavailable
from tests.kb.docsite_corpus import PAGES, questions, render
from tests.kb.retrieval_corpus import PASSAGES, QUESTIONS, export
from tests.kb.support import ingest, upload, wait_done

# The shared models sit next to the checkout (or next to the folder of worktrees).
MINILM = next(
    (
        base / "shared" / "models" / "minilm-onnx-int8"
        for base in Path(__file__).resolve().parents
        if (base / "shared" / "models" / "minilm-onnx-int8").is_dir()
    ),
    Path(__file__).resolve().parents[3] / "shared" / "models" / "minilm-onnx-int8",
)


MODES = ("dense", "sparse", "hybrid")
DEPTH = 10
# Floors just under what hybrid measures on tests/kb/retrieval_corpus.py (202 passages, 69
# questions), two runs: hit@5 1.0 for every kind, hit@1 0.80-0.83, MRR 0.90-0.91 (dense: hit@5
# 0.97, 0.92 on keyword questions; sparse: hit@5 0.88, 0.71 on paraphrases). A floor allows
# about one or two misses; hit@1 varies between runs, so its floor is lower.
HYBRID_AT1 = 0.75
HYBRID_AT5 = 0.97
HYBRID_KEYWORD_AT5 = 0.96
HYBRID_PARAPHRASE_AT5 = 0.96
HYBRID_MIXED_AT5 = 0.93
HYBRID_MRR = 0.85


def _settings(tmp_path: Path) -> Settings:
    if not MINILM.is_dir():
        unavailable(f"the shared MiniLM model at {MINILM}")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        embedding_model="sentence-transformers/all-MiniLM-L6-v2",
        embedding_model_path=MINILM,
        bcrypt_rounds=4,
        log_level="WARNING",
        rate_limit_per_minute=0,
    )


def hit(ranks: list[int | None], k: int) -> float:
    """Share of questions answered in the top k."""
    return sum(1 for rank in ranks if rank is not None and rank <= k) / len(ranks)


def mrr(ranks: list[int | None]) -> float:
    """Mean reciprocal rank of the answering passage (0 for a miss)."""
    return sum(1 / rank for rank in ranks if rank is not None) / len(ranks)


def test_the_set_exports_for_mai_kb_eval(tmp_path: Path) -> None:
    """The exported questions load as a `mai kb eval` file and each names an exported passage."""
    loaded = load_questions(export(tmp_path))
    files = {path.name for path in (tmp_path / "passages").iterdir()}
    assert len(files) == len(PASSAGES) >= 200
    assert len(loaded) == len(QUESTIONS) >= 60
    assert [q.question for q in loaded] == [question for question, _, _ in QUESTIONS]
    assert all(q.document in files for q in loaded)
    assert {kind for _, _, kind in QUESTIONS} == {"keyword", "paraphrase", "mixed"}


@pytest.mark.slow
async def test_hybrid_is_at_least_as_good_as_either_half(
    app_factory: AppFactory, tmp_path: Path
) -> None:
    """About 200 passages (families of near-twins and plain prose) embedded once, every
    question searched in each mode: hit@k and MRR per mode and kind of question."""
    app = await app_factory(_settings(tmp_path))
    async with client_for(app) as client:
        account = await register(client)
        # Upload everything first so the worker embeds while later files are still arriving.
        queued: dict[str, str] = {}
        for name, text in PASSAGES.items():
            response = await upload(client, account.headers, f"{name}.txt", text.encode())
            assert response.status_code == 202, response.text
            queued[response.json()["id"]] = name
        for document_id in queued:
            doc = await wait_done(client, account.headers, document_id)
            assert doc["status"] == "ready", doc
        ranks: dict[tuple[str, str], list[int | None]] = {}
        for mode in MODES:
            for question, expected, kind in QUESTIONS:
                response = await client.post(
                    "/api/v1/kb/search",
                    headers=account.headers,
                    json={"query": question, "mode": mode, "top_k": DEPTH},
                )
                assert response.status_code == 200, response.text
                found = [queued[r["document_id"]] for r in response.json()["results"]]
                rank = found.index(expected) + 1 if expected in found else None
                ranks.setdefault((mode, kind), []).append(rank)
                ranks.setdefault((mode, "all"), []).append(rank)

    summary = {
        f"{mode} {kind}": (
            round(hit(values, 1), 3),
            round(hit(values, 5), 3),
            round(hit(values, 10), 3),
            round(mrr(values), 3),
        )
        for (mode, kind), values in sorted(ranks.items())
    }
    print("(hit@1, hit@5, hit@10, MRR)", json.dumps(summary, indent=1))

    def at5(mode: str, kind: str = "all") -> float:
        return hit(ranks[(mode, kind)], 5)

    # Hybrid is at least as good as either half over the whole set.
    assert at5("hybrid") >= at5("dense"), summary
    assert at5("hybrid") >= at5("sparse"), summary
    assert mrr(ranks[("hybrid", "all")]) >= mrr(ranks[("dense", "all")]), summary
    # Keyword search rescues exact codes the dense model confuses with their near-twins ...
    assert at5("hybrid", "keyword") > at5("dense", "keyword"), summary
    # ... and the dense half still carries the paraphrases inside the fusion.
    assert at5("hybrid", "paraphrase") > at5("sparse", "paraphrase"), summary
    # Floors just under what the set measures (see the printed summary).
    assert at5("hybrid") >= HYBRID_AT5, summary
    assert hit(ranks[("hybrid", "all")], 1) >= HYBRID_AT1, summary
    assert at5("hybrid", "keyword") >= HYBRID_KEYWORD_AT5, summary
    assert at5("hybrid", "paraphrase") >= HYBRID_PARAPHRASE_AT5, summary
    assert at5("hybrid", "mixed") >= HYBRID_MIXED_AT5, summary
    assert mrr(ranks[("hybrid", "all")]) >= HYBRID_MRR, summary


@pytest.mark.slow
async def test_documentation_site_answers_at_rank_one(
    app_factory: AppFactory, tmp_path: Path
) -> None:
    """HTML manual pages with navigation, sidebars, admonitions, parameter lists and a table:
    the answering page ranks first (hit@1), not only somewhere in the top 5."""
    app = await app_factory(_settings(tmp_path))
    async with client_for(app) as client:
        account = await register(client)
        slugs: dict[str, str] = {}
        for page in PAGES:
            doc = await ingest(client, account.headers, f"{page.slug}.html", render(page))
            assert doc["status"] == "ready", doc
            slugs[doc["id"]] = page.slug
        ranks: dict[tuple[str, bool], list[int]] = {}
        for mode in ("dense", "hybrid"):
            for question, slug, keyword in questions():
                response = await client.post(
                    "/api/v1/kb/search",
                    headers=account.headers,
                    json={"query": question, "mode": mode, "top_k": 5},
                )
                assert response.status_code == 200, response.text
                found = [slugs[r["document_id"]] for r in response.json()["results"]]
                rank = found.index(slug) + 1 if slug in found else 99
                ranks.setdefault((mode, keyword), []).append(rank)

    def hit(mode: str, keyword: bool, k: int) -> float:
        values = ranks[(mode, keyword)]
        return sum(rank <= k for rank in values) / len(values)

    summary = {
        f"{mode} {'keyword' if keyword else 'paraphrased'}": (
            hit(mode, keyword, 1),
            hit(mode, keyword, 5),
        )
        for mode, keyword in ranks
    }
    print(f"(hit@1, hit@5) {summary}")
    # Measured with bench/kb_docsite.py: before this pipeline (chrome indexed, no titles, tiny
    # chunks) paraphrased hit@1 was 0.77 dense and 0.86 hybrid; it is 0.86 for both now.
    assert hit("hybrid", True, 1) == 1.0, summary
    assert hit("hybrid", False, 1) >= 0.8, summary
    assert hit("dense", False, 1) >= 0.8, summary
    assert hit("hybrid", False, 5) == 1.0, summary
