"""Through the service: told in one conversation, used in the next, visible and deletable."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from app.models import UsageEvent
from tests.conftest import StartAgent
from tests.fake_llm import scripted

QUERY = "/api/v1/agent/query"
MEMORY = "/api/v1/memory"
FACT = "The user's cat is called Tom"


def extracted(*contents: str) -> dict[str, Any]:
    """The memory step's structured reply."""
    return {
        "memories": [{"content": c, "kind": "fact", "importance": 0.8} for c in contents],
        "forget": [],
    }


async def test_told_once_recalled_in_a_new_conversation_then_deleted(
    start_agent: StartAgent,
) -> None:
    nothing = extracted()
    model = scripted(
        {"route": "direct"},
        "Tom is a lovely name.",
        extracted(FACT),
        {"route": "direct"},
        "Your cat is called Tom.",
        nothing,
        {"route": "direct"},
        "I do not know your cat's name.",
        nothing,
    )
    agent = await start_agent(model, memory_enabled=True)
    first = await agent.ask("My cat is called Tom.")
    assert first.status_code == 200, first.text

    listed = (await agent.client.get(MEMORY, headers=agent.user.headers)).json()
    [memory] = listed["items"]
    assert memory["content"] == FACT
    assert memory["conversation_id"] == first.json()["conversation_id"]

    second = await agent.ask("What is my cat called?")  # a new conversation
    assert second.status_code == 200
    [used] = second.json()["memories"]
    assert used["id"] == memory["id"]
    assert used["content"] == FACT
    assert first.json()["memories"] == []
    assert second.json()["conversation_id"] != first.json()["conversation_id"]
    answering_prompt = str(model.calls[4][0].content)
    assert FACT in answering_prompt
    seen = (await agent.client.get(f"{MEMORY}/{memory['id']}", headers=agent.user.headers)).json()
    assert seen["access_count"] == 1
    assert seen["last_accessed_at"] is not None

    deleted = await agent.client.delete(f"{MEMORY}/{memory['id']}", headers=agent.user.headers)
    assert deleted.status_code == 204
    third = await agent.ask("What is my cat called?")
    assert third.status_code == 200
    assert FACT not in str(model.calls[7][0].content)
    assert third.json()["memories"] == []
    assert model.remaining == 0


async def test_the_memory_step_is_metered_as_its_own_usage_event(start_agent: StartAgent) -> None:
    model = scripted({"route": "direct"}, "Tom is a lovely name.", extracted(FACT))
    agent = await start_agent(model, memory_enabled=True)
    response = await agent.ask("My cat is called Tom.")
    assert response.status_code == 200
    answer_tokens = response.json()["usage"]

    by_kind: dict[str, UsageEvent] = {}
    # The turn's own event is written by the run's completion hook, just after the answer.
    for _ in range(250):
        async with agent.resources.sessionmaker() as session:
            events = (await session.execute(select(UsageEvent))).scalars().all()
        by_kind = {event.kind: event for event in events}
        if len(by_kind) == 2:
            break
        await asyncio.sleep(0.02)
    assert set(by_kind) == {"agent_turn", "memory"}
    memory = by_kind["memory"]
    assert memory.input_tokens > 0
    assert memory.output_tokens > 0
    assert str(memory.run_id) == response.json()["run_id"]
    # The answer's usage is the answer's alone; the user's totals include the memory step.
    assert by_kind["agent_turn"].input_tokens == answer_tokens["input_tokens"]
    usage = await agent.client.get("/api/v1/analytics/usage", headers=agent.user.headers)
    assert usage.status_code == 200, usage.text
    totals = usage.json()["totals"]
    assert totals["input_tokens"] == answer_tokens["input_tokens"] + memory.input_tokens


async def test_the_kill_switch_turns_memory_off(start_agent: StartAgent) -> None:
    model = scripted({"route": "direct"}, "Tom is a lovely name.")
    agent = await start_agent(model, memory_enabled=False)
    response = await agent.ask("My cat is called Tom.")
    assert response.status_code == 200
    assert len(model.calls) == 2  # no memory step
    listed = (await agent.client.get(MEMORY, headers=agent.user.headers)).json()
    assert listed["total"] == 0
