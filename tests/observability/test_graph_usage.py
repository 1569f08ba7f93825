"""Runs of different graphs are told apart: metrics, usage events and analytics carry the graph.

A planner turn and an assistant turn through /api/v1/agent with the scripted model; counters
are process-wide, so the metric checks compare scrapes before and after.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.models import UsageEvent
from tests.conftest import StartAgent
from tests.graphs.planner_support import PlannerModel, plan_json, step
from tests.observability.promtext import value
from tests.observability.test_agent_metrics import MODEL, delta, scrape

pytestmark = pytest.mark.usefixtures("backend")

USAGE = "/api/v1/analytics/usage"


async def test_planner_turns_are_labelled_and_queryable_by_graph(
    start_agent: StartAgent, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"models:\n  {MODEL}: {{input: 1.0, output: 2.0}}\n")
    model = PlannerModel(
        plan=plan_json(step("s1", "assistant", "Name the capital of France.")),
        route='{"route": "direct"}',
        answer="Paris.",
    )
    agent = await start_agent(model.llm, planner_approval="never", model_prices_file=prices)
    headers = agent.user.headers
    before = await scrape(agent.client)

    planned = await agent.ask("What is the capital of France?", graph="planner")
    assert planned.status_code == 200, planned.text
    assert planned.json()["status"] == "completed"
    usage = planned.json()["usage"]
    assert usage["input_tokens"] > 0
    assisted = await agent.ask("hello")
    assert assisted.status_code == 200, assisted.text

    # The run hooks (metrics, usage events) run once the answer is out: wait for both turns.
    graphs: dict[str, Any] = {}
    for _ in range(500):
        report = (await agent.client.get(USAGE, headers=headers)).json()
        graphs = {g["graph_id"]: g for g in report["graphs"]}
        if {"planner", "assistant"} <= set(graphs):
            break
        await asyncio.sleep(0.02)
    assert graphs["planner"]["turns"] == 1
    assert graphs["planner"]["input_tokens"] == usage["input_tokens"]
    assert graphs["planner"]["cost_usd"] > 0
    assert graphs["assistant"]["turns"] == 1
    after = await scrape(agent.client)

    planner = {"model": MODEL, "graph": "planner"}
    assert delta(before, after, "mai_agent_runs_total", graph="planner", status="success") == 1
    assert delta(before, after, "mai_agent_runs_total", graph="assistant", status="success") == 1
    tokens_in = delta(before, after, "mai_llm_tokens_total", direction="input", **planner)
    assert tokens_in == usage["input_tokens"]
    cost = delta(before, after, "mai_llm_cost_usd_total", **planner)
    expected = (usage["input_tokens"] * 1.0 + usage["output_tokens"] * 2.0) / 1_000_000
    assert cost == pytest.approx(expected)
    nodes = "mai_agent_node_duration_seconds_count"
    assert delta(before, after, nodes, graph="planner", node="plan") == 1
    assert value(after, nodes, graph="assistant", node="plan") == value(
        before, nodes, graph="assistant", node="plan"
    )

    only = (await agent.client.get(f"{USAGE}?graph=planner", headers=headers)).json()
    assert only["graph"] == "planner"
    assert only["totals"]["turns"] == 1
    assert only["totals"]["input_tokens"] == usage["input_tokens"]
    assert [g["graph_id"] for g in only["graphs"]] == ["planner"]
    none = (await agent.client.get(f"{USAGE}?graph=sentiment", headers=headers)).json()
    assert none["totals"]["turns"] == 0
    bad = await agent.client.get(f"{USAGE}?graph=not a graph", headers=headers)
    assert bad.status_code == 422, bad.text

    async with agent.resources.sessionmaker() as session:
        rows = (await session.execute(select(UsageEvent.graph_id, UsageEvent.run_id))).all()
    assert (("planner", planned.json()["run_id"])) in {(g, r) for g, r in rows}
