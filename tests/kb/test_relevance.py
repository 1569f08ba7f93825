"""Relevance: reranking by the chat model (with the fused order kept on failure) and the
lexical check that each citation is backed by the passage it names."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.services.kb.rerank import RerankCall, RerankCost, apply_order, blend
from graphs.assistant.citation_check import check_citations, supports
from graphs.assistant.state import Citation
from graphs.knowledge import Passage
from tests.conftest import AppFactory, SettingsFactory, client_for, register
from tests.fake_llm import scripted
from tests.kb.support import HashEmbedder, ingest

TITLE_OF = {
    "The pump valve leaks at nine bar of pressure.": "a",
    "Pump maintenance: replace the pump gasket yearly.": "b",
    "The pump warranty lasts two years.": "c",
}


def passage(number: int, text: str) -> Passage:
    return {
        "chunk_id": f"c{number}", "document_id": f"d{number}", "title": f"T{number}",
        "page": None, "section": None, "text": text, "score": 1.0, "start": 0, "end": len(text),
    }  # fmt: skip


def citation(number: int) -> Citation:
    return {
        "number": number, "document_id": f"d{number}", "title": f"T{number}", "page": None,
        "snippet": "", "score": 1.0,
    }  # fmt: skip


def test_a_citation_is_supported_when_its_sentence_shares_the_passages_words() -> None:
    passages = [
        passage(1, "A blinking amber light means error ERR-4471: the fan failed."),
        passage(2, "Lunch is served in the canteen at noon."),
    ]
    answer = (
        "The amber light with ERR-4471 means the fan failed [1]. "
        "The warranty covers three years of repairs [2]."
    )
    checked, share = check_citations(answer, [citation(1), citation(2)], passages)
    assert [(c["number"], c["supported"]) for c in checked] == [(1, True), (2, False)]
    assert share == 0.5
    # One supported sentence is enough for a passage cited twice.
    checked, share = check_citations(
        "Lunch is at noon in the canteen [2]. It is also free [2].", [citation(2)], passages
    )
    assert (checked[0]["supported"], share) == (True, 1.0)
    assert check_citations("No citations here.", [], passages) == ([], None)
    assert not supports("[1]", passages[0]["text"]), "a bare marker backs nothing"


def test_the_model_order_comes_first_and_the_rest_keep_the_fused_order() -> None:
    assert apply_order(["a", "b", "c", "d"], [3, 1]) == ["c", "a", "b", "d"]
    # Numbers out of range or repeated are ignored.
    assert apply_order(["a", "b"], [7, 2, 2, 0]) == ["b", "a"]
    assert apply_order(["a", "b"], []) == ["a", "b"]


def test_the_model_order_is_blended_with_the_fused_order() -> None:
    """A passage the model picks moves up past close neighbours, not over everything; one the
    model puts last, both retrievers' first, stays near the top."""
    fused = ["a", "b", "c", "d", "e"]
    assert blend(fused, [1, 2, 3, 4, 5]) == fused, "agreement changes nothing"
    assert blend(fused, []) == fused
    assert blend(fused, [5]) == ["a", "b", "e", "c", "d"]
    assert blend(fused, [2, 3, 4, 5, 1]) == ["b", "c", "a", "d", "e"]
    # Swapping neighbours is a tie, kept in the fused order.
    assert blend(fused, [2]) == fused


def test_rerank_cost_is_summarised_per_query() -> None:
    assert RerankCost.of([]) is None
    cost = RerankCost.of([RerankCall(1.0, 900, 10), RerankCall(3.0, 1100, 30)])
    assert cost is not None
    assert (cost.calls, cost.p50_seconds, cost.max_seconds) == (2, 2.0, 3.0)
    assert (cost.input_tokens, cost.output_tokens) == (1000, 20)
    assert cost.describe() == (
        "rerank cost per query: p50 2.00 s (max 3.00 s), 1,000 input + 20 output tokens "
        "over 2 call(s)"
    )


@pytest.mark.usefixtures("backend")
async def test_llm_rerank_reorders_candidates_and_keeps_fused_order_on_failure(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    model = scripted({"order": [3, 1]}, RuntimeError("the model server crashed"))
    settings = settings_factory(rate_limit_per_minute=0, kb_rerank="llm", kb_rerank_candidates=5)
    app = await app_factory(settings, embedder=HashEmbedder(), chat_model=model)
    async with client_for(app) as client:
        account = await register(client)
        for text, title in TITLE_OF.items():
            document = await ingest(client, account.headers, f"{title}.txt", text.encode())
            assert document["status"] == "ready"

        async def titles(rerank: bool | None) -> list[str]:
            body: dict[str, Any] = {"query": "pump", "top_k": 3, "rerank": rerank}
            response = await client.post("/api/v1/kb/search", headers=account.headers, json=body)
            assert response.status_code == 200, response.text
            return [hit["title"] for hit in response.json()["results"]]

        fused = await titles(False)
        assert len(fused) == 3
        assert model.calls == [], "rerank off: no model call"
        reranked = await titles(None)
        [call] = model.calls
        prompt = str(call[-1].content)
        assert "Query: pump" in prompt
        # The candidates as the model saw them, numbered in fused order (ties may fall either
        # way between two searches, so the order is read from the prompt).
        shown = [TITLE_OF[text] for text in re.findall(r"^\[\d\] (.+)$", prompt, re.M)]
        assert sorted(shown) == sorted(fused)
        # Blended with the fused order: the model's first pick moves up one place.
        assert reranked == [shown[0], shown[2], shown[1]]
        # The model fails: the search still answers, in the fused order.
        assert sorted(await titles(True)) == sorted(fused)
        assert len(model.calls) == 2


@pytest.mark.usefixtures("backend")
async def test_a_cited_answer_reports_its_citation_support(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    model = scripted(
        {"route": "knowledge"},
        "Error ERR-4471 means the fan failed [1]. Refunds take ninety business days [1].",
    )
    settings = settings_factory(rate_limit_per_minute=0)
    app = await app_factory(settings, embedder=HashEmbedder(), chat_model=model)
    async with client_for(app) as client:
        account = await register(client)
        await ingest(
            client, account.headers, "fan.txt", b"Error ERR-4471 means the cooling fan failed."
        )
        response = await client.post(
            "/api/v1/agent/query",
            headers=account.headers,
            json={"message": "What does ERR-4471 mean?"},
        )
        assert response.status_code == 200, response.text
        turn = response.json()
        [cited] = turn["citations"]
        assert cited["supported"] is True
        assert turn["citation_support"] == 1.0
        metrics = await client.get("/metrics")
        assert "mai_kb_citation_support_ratio_count" in metrics.text


async def test_citation_support_is_lower_for_a_misattributed_citation(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    model = scripted(
        {"route": "knowledge"},
        "Refunds are paid within ninety business days [1].",
    )
    settings = settings_factory(rate_limit_per_minute=0)
    app = await app_factory(settings, embedder=HashEmbedder(), chat_model=model)
    async with client_for(app) as client:
        account: Any = await register(client)
        await ingest(client, account.headers, "fan.txt", b"Refunds: error ERR-4471 is the fan.")
        response = await client.post(
            "/api/v1/agent/query",
            headers=account.headers,
            json={"message": "How long do refunds take?"},
        )
        turn = response.json()
        assert [c["supported"] for c in turn["citations"]] == [False]
        assert turn["citation_support"] == 0.0
