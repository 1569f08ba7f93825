"""Retrieval quality with the real MiniLM model: hybrid search is at least as good as dense,
and better on questions that hinge on an exact code or name."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from tests.conftest import AppFactory, client_for, register, unavailable
from tests.kb.retrieval_corpus import PASSAGES, QUESTIONS
from tests.kb.support import ingest

MODEL_DIR = (Path(__file__).resolve().parents[2] / ".." / "shared" / "models").resolve()
MINILM = MODEL_DIR / "minilm-onnx-int8"


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
