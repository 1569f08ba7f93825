"""The moderation graph: detectors on tables of cases, masking, thresholds, stages, failures."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from prometheus_client import REGISTRY

from graphs.moderation import (
    Context,
    ModerationInputError,
    StageFailed,
    builder,
    detect,
    iban_valid,
    luhn_valid,
    mask,
    unmask,
)
from tests.fake_llm import responding
from tests.graphs.conftest import thread

Graph = CompiledStateGraph[Any, Any, Any, Any]


@pytest.fixture
def moderation(checkpointer: BaseCheckpointSaver[Any]) -> Graph:
    """The moderation graph compiled with the parametrized checkpointer."""
    return builder.compile(checkpointer=checkpointer)


class Moderator:
    """A scripted model answering toxicity and PII calls (told apart by their prompt)."""

    def __init__(self, toxicity: Any = None, entities: Any = None) -> None:
        self.toxicity = toxicity if toxicity is not None else {"toxicity": 0.05}
        self.entities = entities if entities is not None else {"entities": []}
        self.calls: Counter[str] = Counter()
        self.llm = responding(self._respond)

    def _respond(self, messages: list[BaseMessage]) -> str:
        system = str(messages[0].content)
        kind = "toxicity" if system.startswith("You are a content moderator") else "pii"
        self.calls[kind] += 1
        reply = self.toxicity if kind == "toxicity" else self.entities
        if isinstance(reply, BaseException):
            raise reply
        return reply if isinstance(reply, str) else json.dumps(reply)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe@example.com today", [("email", "jane.doe@example.com")]),
        ("(ops_team+alerts@mail.example.org)", [("email", "ops_team+alerts@mail.example.org")]),
        ("prefix_jane@example.com_suffix is one token", []),
        ("user@localhost has no domain", []),
        ("an @ sign alone, and a@b", []),
        ("card 4111 1111 1111 1111 on file", [("card", "4111 1111 1111 1111")]),
        ("card 4111-1111-1111-1111", [("card", "4111-1111-1111-1111")]),
        ("card 4111 1111 1111 1112 fails Luhn", []),
        ("ticket 12345 is too short for anything", []),
        ("IBAN DE89 3704 0044 0532 0130 00", [("iban", "DE89 3704 0044 0532 0130 00")]),
        ("IBAN GB82WEST12345698765432", [("iban", "GB82WEST12345698765432")]),
        ("IBAN DE89 3704 0044 0532 0130 01 has a bad checksum", []),
        ("from 192.168.1.20 and 2001:db8::1", [("ip", "192.168.1.20"), ("ip", "2001:db8::1")]),
        ("999.1.1.1 is no address, nor is version 1.2.3", []),
        ("call +44 20 7946 0958 now", [("phone", "+44 20 7946 0958")]),
        ("call 555-123-4567.", [("phone", "555-123-4567")]),
        ("meet at 12:30 on 2024-05-01", []),
    ],
)
def test_detectors(text: str, expected: list[tuple[str, str]]) -> None:
    found = detect(text)
    assert [(span["type"], span["text"]) for span in found] == expected
    for span in found:
        assert text[span["start"] : span["end"]] == span["text"]


def test_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("DE89370400440532013001")


def test_masking_round_trip() -> None:
    text = "Mail a@example.com or b@example.com; again a@example.com. Card 4111 1111 1111 1111."
    findings = [
        {**span, "stage": "pii", "score": 1.0, "source": "pattern"} for span in detect(text)
    ]
    masked, mapping = mask(text, findings)  # type: ignore[arg-type]
    assert masked == "Mail [EMAIL_1] or [EMAIL_2]; again [EMAIL_1]. Card [CARD_1]."
    assert mapping["[CARD_1]"] == "4111 1111 1111 1111"
    assert unmask(masked, mapping) == text


async def test_full_pipeline(moderation: Graph) -> None:
    text = "Jane Doe (jane@example.com, 4111 1111 1111 1111) lives at 12 High Street, Leeds."
    model = Moderator(
        toxicity={"toxicity": 0.1, "insult": 0.0, "rationale": "neutral"},
        entities={
            "entities": [
                {"type": "name", "text": "Jane Doe"},
                {"type": "address", "text": "12 High Street, Leeds"},
                {"type": "name", "text": "Not In Text"},
            ]
        },
    )
    config = thread()
    result = await moderation.ainvoke({"text": text}, config, context=Context(llm=model.llm))

    assert result["verdict"] == "allow"
    assert result["sanitized"] == "[NAME_1] ([EMAIL_1], [CARD_1]) lives at [ADDRESS_1]."
    kinds = [(f["type"], f["source"]) for f in result["findings"]]
    assert kinds == [
        ("name", "model"),
        ("email", "pattern"),
        ("card", "pattern"),
        ("address", "model"),
    ]
    assert {r["stage"]: r["outcome"] for r in result["reports"]} == {
        "toxicity": "ok",
        "pii": "ok",
        "sanitize": "ok",
    }
    assert "mapping" not in result  # the reversible mapping stays out of the output
    state = (await moderation.aget_state(config)).values
    assert unmask(result["sanitized"], state["mapping"]) == text
    assert model.calls == {"toxicity": 1, "pii": 1}


@pytest.mark.parametrize(
    ("scores", "verdict"),
    [
        ({"toxicity": 0.2}, "allow"),
        ({"toxicity": 0.6}, "review"),
        ({"toxicity": 0.3, "threat": 0.85}, "block"),
        ({"toxicity": 0.79}, "review"),
    ],
)
async def test_thresholds(moderation: Graph, scores: dict[str, float], verdict: str) -> None:
    model = Moderator(toxicity=scores)
    result = await moderation.ainvoke(
        {"text": "some text", "stages": ["toxicity"]},
        thread(),
        context=Context(llm=model.llm, review_threshold=0.5, block_threshold=0.8),
    )
    assert result["verdict"] == verdict
    if verdict != "allow":
        assert result["reasons"]
        assert any(f["stage"] == "toxicity" for f in result["findings"])


async def test_each_stage_alone(moderation: Graph) -> None:
    text = "mail bob@example.com"
    model = Moderator()
    only_toxicity = await moderation.ainvoke(
        {"text": text, "stages": ["toxicity"]}, thread(), context=Context(llm=model.llm)
    )
    assert [r["stage"] for r in only_toxicity["reports"]] == ["toxicity"]
    assert only_toxicity["sanitized"] is None
    assert model.calls == {"toxicity": 1}

    only_pii = await moderation.ainvoke(
        {"text": text, "stages": ["pii"]}, thread(), context=Context(llm=model.llm, model_pii=False)
    )
    assert [r["stage"] for r in only_pii["reports"]] == ["pii"]
    assert [f["type"] for f in only_pii["findings"]] == ["email"]
    assert only_pii["toxicity"] == {}

    sanitize = await moderation.ainvoke(
        {"text": text, "stages": ["sanitize"]},
        thread(),
        context=Context(llm=model.llm, model_pii=False),
    )
    assert [r["stage"] for r in sanitize["reports"]] == ["pii", "sanitize"]
    assert sanitize["sanitized"] == "mail [EMAIL_1]"
    assert model.calls == {"toxicity": 1}  # the pattern-only runs made no model call


async def test_a_failing_stage_under_continue(moderation: Graph) -> None:
    model = Moderator(toxicity=RuntimeError("model server down"))
    before = (
        REGISTRY.get_sample_value(
            "mai_moderation_stage_seconds_count", {"stage": "toxicity", "outcome": "error"}
        )
        or 0.0
    )
    result = await moderation.ainvoke(
        {"text": "call 555-123-4567"},
        thread(),
        context=Context(llm=model.llm, error_strategy="continue"),
    )
    reports = {r["stage"]: r for r in result["reports"]}
    assert reports["toxicity"]["outcome"] == "error"
    assert "model server down" in reports["toxicity"]["error"]
    assert reports["sanitize"]["outcome"] == "ok"
    assert result["sanitized"] == "call [PHONE_1]"
    assert result["verdict"] == "review"  # unchecked text needs a person
    assert "toxicity stage failed" in result["reasons"][0]
    after = REGISTRY.get_sample_value(
        "mai_moderation_stage_seconds_count", {"stage": "toxicity", "outcome": "error"}
    )
    assert after == before + 1


async def test_pattern_findings_survive_a_failing_model_under_continue(moderation: Graph) -> None:
    model = Moderator(entities="not json at all")
    result = await moderation.ainvoke(
        {"text": "mail bob@example.com", "stages": ["pii"]},
        thread(),
        context=Context(llm=model.llm),
    )
    assert result["reports"][0]["outcome"] == "error"
    assert "PII detection" in result["reports"][0]["error"]
    assert [f["type"] for f in result["findings"]] == ["email"]
    assert model.calls == {"pii": 2}  # one repair attempt


async def test_a_failing_stage_under_fail_fast(moderation: Graph) -> None:
    model = Moderator(toxicity=RuntimeError("model server down"))
    with pytest.raises(StageFailed, match="moderation stage toxicity failed"):
        await moderation.ainvoke(
            {"text": "hello"}, thread(), context=Context(llm=model.llm, error_strategy="fail_fast")
        )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [({"text": "  "}, "non-empty"), ({"text": "x", "stages": ["spam"]}, "unknown stage 'spam'")],
)
async def test_bad_input(moderation: Graph, payload: dict[str, Any], expected: str) -> None:
    with pytest.raises(ModerationInputError, match=expected):
        await moderation.ainvoke(payload, thread(), context=Context(llm=Moderator().llm))
