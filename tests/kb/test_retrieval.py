"""Retrieval quality with the real MiniLM model: hybrid search is at least as good as dense,
and better on questions that hinge on an exact code or name."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from tests.conftest import AppFactory, client_for, register, unavailable
from tests.kb.docsite_corpus import PAGES, questions, render
from tests.kb.retrieval_corpus import PASSAGES, QUESTIONS
from tests.kb.support import ingest

# The shared models sit next to the checkout (or next to the folder of worktrees).
MINILM = next(
    (
        base / "shared" / "models" / "minilm-onnx-int8"
        for base in Path(__file__).resolve().parents
        if (base / "shared" / "models" / "minilm-onnx-int8").is_dir()
    ),
    Path(__file__).resolve().parents[3] / "shared" / "models" / "minilm-onnx-int8",
)


async def _hits(
    client: httpx.AsyncClient, headers: dict[str, str], mode: str, ids: dict[str, str]
) -> dict[str, list[bool]]:
    by_kind: dict[str, list[bool]] = {"keyword": [], "semantic": []}
    for question, expected, keyword in QUESTIONS:
        response = await client.post(
            "/api/v1/kb/search",
            headers=headers,
            json={"query": question, "mode": mode, "top_k": 5},
        )
        assert response.status_code == 200, response.text
        found = [r["document_id"] for r in response.json()["results"]]
        by_kind["keyword" if keyword else "semantic"].append(ids[expected] in found)
    return by_kind


@pytest.mark.slow
async def test_hybrid_beats_dense_on_exact_keywords(
    app_factory: AppFactory, tmp_path: Path
) -> None:
    if not MINILM.is_dir():
        unavailable(f"the shared MiniLM model at {MINILM}")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        embedding_model="sentence-transformers/all-MiniLM-L6-v2",
        embedding_model_path=MINILM,
        bcrypt_rounds=4,
        log_level="WARNING",
        rate_limit_per_minute=0,
    )
    app = await app_factory(settings)
    async with client_for(app) as client:
        account = await register(client)
        ids: dict[str, str] = {}
        for name, text in PASSAGES.items():
            doc = await ingest(client, account.headers, f"{name}.txt", text.encode())
            assert doc["status"] == "ready", doc
            ids[name] = doc["id"]
        dense = await _hits(client, account.headers, "dense", ids)
        hybrid = await _hits(client, account.headers, "hybrid", ids)

    def rate(values: list[bool]) -> float:
        return sum(values) / len(values)

    summary = {
        mode: {kind: rate(values) for kind, values in result.items()}
        for mode, result in (("dense", dense), ("hybrid", hybrid))
    }
    print(f"hit@5 {summary}")
    dense_all = rate(dense["keyword"] + dense["semantic"])
    hybrid_all = rate(hybrid["keyword"] + hybrid["semantic"])
    assert hybrid_all >= dense_all, summary
    assert rate(hybrid["keyword"]) > rate(dense["keyword"]), summary
    assert rate(hybrid["semantic"]) >= 0.7, summary  # the dense half still works in the fusion


@pytest.mark.slow
async def test_documentation_site_answers_at_rank_one(
    app_factory: AppFactory, tmp_path: Path
) -> None:
    """HTML manual pages with navigation, sidebars, admonitions, parameter lists and a table:
    the answering page ranks first (hit@1), not only somewhere in the top 5."""
    if not MINILM.is_dir():
        unavailable(f"the shared MiniLM model at {MINILM}")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        embedding_model="sentence-transformers/all-MiniLM-L6-v2",
        embedding_model_path=MINILM,
        bcrypt_rounds=4,
        log_level="WARNING",
        rate_limit_per_minute=0,
    )
    app = await app_factory(settings)
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
