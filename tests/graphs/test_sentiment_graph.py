"""The sentiment graph with the scripted model: valid results, repair, clear failure, batches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from graphs.sentiment import (
    Context,
    GlossaryError,
    SentimentInvalid,
    builder,
    glossary_tool,
    load_glossary,
    lookup_terms,
)
from graphs.tools import ToolContext, run_tool
from tests.fake_llm import responding, scripted
from tests.graphs.conftest import thread

Graph = CompiledStateGraph[Any, Any, Any, Any]
GOOD = {
    "label": "mixed",
    "score": 0.1,
    "aspects": [
        {"aspect": "battery", "label": "positive", "score": 0.8},
        {"aspect": "screen", "label": "negative", "score": -0.6},
    ],
    "rationale": "Praises the battery ('lasts days') but not the screen ('dim').",
}


@pytest.fixture
def sentiment(checkpointer: BaseCheckpointSaver[Any]) -> Graph:
    """The sentiment graph compiled with the parametrized checkpointer."""
    return builder.compile(checkpointer=checkpointer)


async def test_a_valid_result(sentiment: Graph) -> None:
    llm = scripted(GOOD)
    result = await sentiment.ainvoke(
        {"text": "The battery lasts days but the screen is dim."},
        thread(),
        context=Context(llm=llm),
    )
    analysis = result["result"]
    assert analysis["label"] == "mixed"
    assert analysis["score"] == 0.1
    assert [a["aspect"] for a in analysis["aspects"]] == ["battery", "screen"]
    assert analysis["aspects"][1]["label"] == "negative"
    assert result["results"] == [analysis]
    assert result["usage"]["input_tokens"] > 0
    assert len(llm.calls) == 1


async def test_invalid_output_is_repaired_once(sentiment: Graph) -> None:
    bad = {"label": "ecstatic", "score": 3, "rationale": "very happy"}
    llm = scripted(bad, {"label": "positive", "score": 0.9, "rationale": "Says 'love it'."})
    result = await sentiment.ainvoke({"text": "I love it"}, thread(), context=Context(llm=llm))

    assert result["result"]["label"] == "positive"
    repair = llm.calls[1][-1].content
    assert "label" in repair
    assert "score" in repair


async def test_output_still_invalid_after_repair_fails_clearly(sentiment: Graph) -> None:
    llm = scripted("I think it is nice", {"label": "positive", "score": 0.5})
    with pytest.raises(SentimentInvalid, match=r"sentiment of text 0.*rationale"):
        await sentiment.ainvoke({"text": "nice"}, thread(), context=Context(llm=llm))
    assert len(llm.calls) == 2


async def test_a_batch_keeps_input_order(sentiment: Graph) -> None:
    def respond(messages: list[BaseMessage]) -> str:
        text = str(messages[-1].content)
        label = "negative" if "awful" in text.lower() else "positive"
        score = -0.7 if label == "negative" else 0.7
        return json.dumps({"label": label, "score": score, "rationale": f"From: {text}"})

    texts = ["Great service", "Awful wait times", "Lovely staff", "awful food"]
    result = await sentiment.ainvoke(
        {"texts": texts}, thread(), context=Context(llm=responding(respond))
    )
    assert [r["text"] for r in result["results"]] == texts
    assert [r["label"] for r in result["results"]] == [
        "positive",
        "negative",
        "positive",
        "negative",
    ]
    assert result["result"] is None


async def test_a_message_is_analysed_and_glossary_terms_reach_the_prompt(sentiment: Graph) -> None:
    llm = scripted({"label": "positive", "score": 0.8, "rationale": "'sick' is praise here."})
    result = await sentiment.ainvoke(
        {"messages": [HumanMessage(content="That new release is sick!")]},
        thread(),
        context=Context(llm=llm),
    )
    assert result["result"]["glossary"][0]["term"] == "sick"
    assert "sick: in casual speech often means excellent" in str(llm.calls[0][0].content)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"text": "   "}, "non-empty"),
        ({}, "non-empty"),
        ({"texts": ["ok"] * 3}, "at most 2 texts"),
        ({"text": "x" * 50}, "longer than 40"),
    ],
)
async def test_bad_input_is_refused(
    sentiment: Graph, payload: dict[str, Any], expected: str
) -> None:
    llm = scripted()
    with pytest.raises(SentimentInvalid, match=expected):
        await sentiment.ainvoke(
            payload, thread(), context=Context(llm=llm, max_texts=2, max_chars=40)
        )
    assert llm.calls == []


def test_glossary_lookup_matches_whole_words(tmp_path: Path) -> None:
    glossary = load_glossary(str(Path("graphs/sentiment/glossary.yaml").resolve()))
    assert [hit["term"] for hit in lookup_terms("Churn is up; SLA breach again", glossary)] == [
        "sla breach",
        "churn",
    ]
    assert lookup_terms("the churning butter", glossary) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(GlossaryError, match="must map each term"):
        load_glossary(str(bad))
    with pytest.raises(GlossaryError, match="not found"):
        load_glossary(str(tmp_path / "missing.yaml"))


async def test_glossary_tool() -> None:
    spec = glossary_tool(str(Path("graphs/sentiment/glossary.yaml").resolve()))
    outcome = await run_tool(spec, {"text": "We saw downtime"}, ToolContext(), timeout=5)
    assert outcome.status == "ok"
    assert outcome.content.startswith("downtime: ")
