"""`mai kb eval`, in-process, with the real MiniLM model: hit@k and MRR per mode on a
question set, the rerank row honest about a chat model it could not reach."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.kb.retrieval_corpus import PASSAGES, QUESTIONS
from tests.kb.test_cli_retry import _mai, data_dir  # noqa: F401  (the fixture)

ROW = re.compile(
    r"^\W*(dense|sparse|hybrid\+rerank|hybrid)\W+([\d.]+)\W+([\d.]+)\W+([\d.]+)\W+([\d.]+)", re.M
)


def scores(output: str) -> dict[str, list[float]]:
    """mode -> [hit@1, hit@5, hit@10, MRR] from the printed table."""
    return {m.group(1): [float(m.group(i)) for i in range(2, 6)] for m in ROW.finditer(output)}


@pytest.mark.slow
def test_kb_eval_prints_hit_rates_and_mrr_per_mode(data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in PASSAGES.items():
        (docs / f"{name}.txt").write_text(text)
    created = _mai(["create-admin", "kb@example.com"], stdin="a-good-password\n")
    assert created.exit_code == 0, created.output
    ingested = _mai(["ingest", str(docs), "--user", "kb@example.com"])
    assert ingested.exit_code == 0, ingested.output

    questions = tmp_path / "questions.jsonl"
    lines = [json.dumps({"question": q, "document": f"{name}.txt"}) for q, name, _ in QUESTIONS]
    # A passage alone identifies the right hit too.
    lines.append(json.dumps({"question": "What is ERR-4471?", "passage": "cooling fan"}))
    questions.write_text("\n".join(lines) + "\n")

    result = _mai(["kb", "eval", str(questions), "--user", "kb@example.com", "--no-rerank"])
    assert result.exit_code == 0, result.output
    table = scores(result.stdout)
    assert set(table) == {"dense", "sparse", "hybrid"}, result.stdout
    assert f"{len(lines)} question(s)" in result.stdout
    for hit1, hit5, hit10, mrr in table.values():
        assert 0 <= hit1 <= hit5 <= hit10 <= 1
        assert hit1 <= mrr <= hit10
    assert table["hybrid"][1] >= table["dense"][1], table
    assert table["hybrid"][1] >= 0.8, table

    # The rerank row with a chat model that cannot be reached: the fused order, said so.
    reranked = _mai(
        ["kb", "eval", str(questions), "--user", "kb@example.com"],
        MAI_LLM_BASE_URL="http://127.0.0.1:9/v1",
        MAI_LLM_MODEL="absent",
        MAI_LLM_MAX_RETRIES="0",
        # As many candidates as the eval depth: the fallback is then exactly the hybrid order
        # (fusing a deeper candidate list can order the top few differently).
        MAI_KB_RERANK_CANDIDATES="10",
    )
    assert reranked.exit_code == 0, reranked.output
    table = scores(reranked.stdout)
    assert table["hybrid+rerank"] == table["hybrid"]
    assert "rerank call(s) failed" in reranked.output

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x", "document": "a.txt"}\n{"question": "no answer given"}\n')
    refused = _mai(["kb", "eval", str(bad), "--user", "kb@example.com"])
    assert refused.exit_code == 1
    assert "bad.jsonl:2" in refused.output
    nobody = _mai(["kb", "eval", str(questions), "--user", "nobody@example.com"])
    assert nobody.exit_code == 1
    assert "no user with email" in nobody.output
