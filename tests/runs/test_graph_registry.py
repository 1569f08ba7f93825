"""Every graph of langgraph.json runs on the engine through the agent API (`graph`)."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import BaseMessage

from tests.conftest import StartAgent
from tests.fake_llm import responding, scripted

QUERY = "/api/v1/agent/query"
SENTIMENT = {
    "label": "positive",
    "score": 0.7,
    "aspects": [{"aspect": "battery", "label": "positive", "score": 0.8}],
    "rationale": "It praises the battery.",
}


async def test_the_service_serves_every_listed_graph(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted())
    served = set(agent.resources.graphs.entries)
    assert {"assistant", "planner", "sentiment", "moderation"} <= served


async def test_sentiment_runs_as_a_run_with_its_output(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(SENTIMENT))
    response = await agent.ask("The battery lasts for days.", graph="sentiment")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "completed"
    assert body["output"]["result"]["label"] == "positive"
    run = await agent.client.get(f"/api/v1/agent/runs/{body['run_id']}", headers=agent.user.headers)
    assert run.json()["graph_id"] == "sentiment"
    assert run.json()["status"] == "success"


async def test_an_unknown_graph_is_404(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted())
    response = await agent.ask("hi", graph="no-such-graph")
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "graph_not_found"


async def test_a_graph_runs_with_the_service_settings(start_agent: StartAgent) -> None:
    def moderator(messages: list[BaseMessage]) -> str:
        if str(messages[0].content).startswith("You are a content moderator"):
            return json.dumps({"toxicity": 0.2})
        return json.dumps({"entities": []})

    # 0.2 is under the default review threshold (0.5), over the configured one.
    agent = await start_agent(responding(moderator), moderation_review_threshold=0.1)
    response = await agent.ask("You are somewhat rude.", graph="moderation")
    assert response.status_code == 200, response.text
    output = response.json()["output"]
    assert output["verdict"] == "review", output
    assert any("0.10" in reason for reason in output["reasons"]), output["reasons"]
