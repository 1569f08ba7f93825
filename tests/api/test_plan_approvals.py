"""A planner's plan approval on the approvals resource: listed, approved, rejected, modified.

The planner runs on the run engine through /api/v1/agent with the scripted model; every plan
needs approval (MAI_PLANNER_APPROVAL=always). Runs on both backends.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.core.clock import FrozenClock
from app.services.approvals import ApprovalService
from tests.api.agent_helpers import parse_sse, wait_idle
from tests.conftest import Agent, StartAgent
from tests.graphs.planner_support import PlannerModel, plan_json, step

pytestmark = pytest.mark.usefixtures("backend")

APPROVALS = "/api/v1/approvals"
QUESTION = "What is the capital of France?"


def france() -> PlannerModel:
    """A model that plans one assistant step, then answers it."""
    return PlannerModel(
        plan=plan_json(step("s1", "assistant", "Name the capital of France.")),
        route='{"route": "direct"}',
        answer=lambda messages: (
            "Rome is the capital of Italy."
            if "Italy" in str(messages[-1].content)
            else "Paris is the capital of France."
        ),
    )


async def start(start_agent: StartAgent, model: PlannerModel, **overrides: Any) -> Agent:
    agent: Agent = await start_agent(
        model.llm, planner_approval="always", approval_sweep_seconds=3600, **overrides
    )
    return agent


async def paused(agent: Agent) -> dict[str, Any]:
    """Ask the planner; the turn pauses on its plan. Returns the turn's body."""
    response = await agent.ask(QUESTION, graph="planner")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "awaiting_approval", body
    return body


async def decide(
    agent: Agent, approval_id: str, action: str, body: Any = None, *, stream: bool = False
) -> httpx.Response:
    suffix = "?stream=true" if stream else ""
    return await agent.client.post(
        f"{APPROVALS}/{approval_id}/{action}{suffix}", json=body, headers=agent.user.headers
    )


async def run_of(agent: Agent, run_id: str) -> dict[str, Any]:
    response = await agent.client.get(f"/api/v1/agent/runs/{run_id}", headers=agent.user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_the_plan_is_an_approval_and_approving_runs_it(start_agent: StartAgent) -> None:
    model = france()
    agent = await start(start_agent, model)
    broker = agent.resources.approval_events
    assert broker is not None
    async with broker.subscribe(lambda event: True) as heard:
        body = await paused(agent)
        event = await asyncio.wait_for(heard.get(), timeout=30)
    [approval] = body["approvals"]
    assert approval["kind"] == "plan"
    assert approval["status"] == "pending"
    assert [s["id"] for s in approval["plan"]["steps"]] == ["s1"]
    assert approval["plan"]["steps"][0]["agent"] == "assistant"
    assert approval["plan"]["estimated_cost_usd"] == pytest.approx(0.01)
    assert approval["run_id"] == body["run_id"]
    assert approval["conversation_id"] == body["conversation_id"]
    assert "approval policy: always" in approval["reason"]
    # Notified live like a tool approval, with the plan.
    assert event["event"] == "approval.requested"
    assert event["approval"]["id"] == approval["id"]
    assert event["approval"]["kind"] == "plan"
    assert event["approval"]["plan"]["steps"][0]["id"] == "s1"
    # Nothing ran before the decision: only the planning call.
    assert dict(model.kinds) == {"plan": 1}
    assert (await run_of(agent, body["run_id"]))["status"] == "interrupted"

    listed = (
        await agent.client.get(f"{APPROVALS}?status=pending", headers=agent.user.headers)
    ).json()
    assert [(a["id"], a["kind"]) for a in listed["items"]] == [(approval["id"], "plan")]
    assert listed["items"][0]["plan"]["steps"][0]["instruction"] == "Name the capital of France."
    # The conversation waits on the plan: a new turn is refused until it is decided.
    busy = await agent.ask(
        "And of Spain?", graph="planner", conversation_id=body["conversation_id"]
    )
    assert busy.status_code == 409, busy.text
    assert busy.json()["error"] == "approval_pending"

    done = await decide(agent, approval["id"], "approve", {"reason": "fine"})
    assert done.status_code == 200, done.text
    turn = done.json()
    assert turn["status"] == "completed"
    assert turn["answer"] == "Paris is the capital of France."
    assert turn["output"]["approval"]["decision"] == "approved"
    assert turn["output"]["results"]["s1"]["status"] == "ok"
    assert turn["run_id"] == body["run_id"]
    assert model.kinds["plan"] == 1  # the resume did not plan again
    assert (await run_of(agent, body["run_id"]))["status"] == "success"
    detail = (
        await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=agent.user.headers)
    ).json()
    assert detail["status"] == "approved"
    assert [h["kind"] for h in detail["history"]] == ["requested", "approved", "resumed"]
    again = await decide(agent, approval["id"], "approve")
    assert again.status_code == 409


async def test_rejecting_the_plan_ends_the_run_with_the_reason(start_agent: StartAgent) -> None:
    model = france()
    agent = await start(start_agent, model)
    [approval] = (await paused(agent))["approvals"]

    done = await decide(agent, approval["id"], "reject", {"reason": "too expensive"})
    assert done.status_code == 200, done.text
    turn = done.json()
    assert turn["status"] == "completed"
    assert "not run" in turn["answer"]
    assert "too expensive" in turn["answer"]
    assert turn["output"]["status"] == "rejected"
    assert turn["output"].get("results") in (None, {})
    assert dict(model.kinds) == {"plan": 1}  # no step ran
    assert (await run_of(agent, turn["run_id"]))["status"] == "success"
    rejected = (
        await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=agent.user.headers)
    ).json()
    assert rejected["status"] == "rejected"
    assert rejected["decision_reason"] == "too expensive"


async def test_a_modified_plan_is_validated_then_runs(start_agent: StartAgent) -> None:
    model = france()
    agent = await start(start_agent, model)
    body = await paused(agent)
    [approval] = body["approvals"]

    cyclic = {
        "steps": [
            step("a", "assistant", "first", ["b"]),
            step("b", "assistant", "second", ["a"]),
        ]
    }
    refused = await decide(agent, approval["id"], "modify", {"plan": cyclic})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "invalid_plan"
    assert "cycle" in refused.json()["detail"]
    unknown = await decide(
        agent, approval["id"], "modify", {"plan": {"steps": [step("x", "oracle", "guess")]}}
    )
    assert unknown.status_code == 422, unknown.text
    assert "unknown agent 'oracle'" in unknown.json()["detail"]
    # Nothing was lost: the approval still waits, the run still sits at its plan.
    still = (
        await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=agent.user.headers)
    ).json()
    assert still["status"] == "pending"
    assert still["edited_args"] is None
    assert (await run_of(agent, body["run_id"]))["status"] == "interrupted"

    italy = {"steps": [step("m1", "assistant", "Name the capital of Italy.")]}
    streamed = await decide(agent, approval["id"], "modify", {"plan": italy}, stream=True)
    assert streamed.status_code == 200, streamed.text
    events, _ = parse_sse(streamed.text)
    names = [e.event for e in events]
    assert names[0] == "metadata"
    assert names[-2:] == ["values", "end"]
    turn = events[-2].data
    assert turn["answer"] == "Rome is the capital of Italy."
    assert [s["id"] for s in turn["output"]["plan"]["steps"]] == ["m1"]
    assert list(turn["output"]["results"]) == ["m1"]
    assert turn["output"]["approval"]["decision"] == "modified"
    assert "capital of Italy" in str(model.prompts["route"][0][-1].content)
    decided = (
        await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=agent.user.headers)
    ).json()
    assert decided["status"] == "approved"
    assert decided["edited_args"]["steps"][0]["id"] == "m1"
    assert decided["edited_args"]["estimated_cost_usd"] == pytest.approx(0.01)
    assert [h["kind"] for h in decided["history"]] == ["requested", "modified", "resumed"]


async def test_a_langgraph_resume_decides_the_plan_approval(start_agent: StartAgent) -> None:
    model = france()
    agent = await start(start_agent, model)
    headers = agent.user.headers
    created = await agent.client.post("/threads", json={}, headers=headers)
    assert created.status_code == 200, created.text
    thread = created.json()["thread_id"]
    ask = {"messages": [{"role": "user", "content": QUESTION}]}
    paused = await agent.client.post(
        f"/threads/{thread}/runs/wait",
        json={"assistant_id": "planner", "input": ask},
        headers=headers,
    )
    assert paused.status_code == 200, paused.text
    [interrupt] = paused.json()["__interrupt__"]
    assert interrupt["value"]["kind"] == "plan_approval"
    listed = (await agent.client.get(f"{APPROVALS}?status=pending", headers=headers)).json()
    [approval] = listed["items"]
    assert approval["kind"] == "plan"
    assert approval["id"] == interrupt["value"]["approval_id"]
    assert approval["conversation_id"] == thread

    # The planner's own resume shape, as a LangGraph client sends it.
    resumed = await agent.client.post(
        f"/threads/{thread}/runs/wait",
        json={"assistant_id": "planner", "command": {"resume": {"decision": "approved"}}},
        headers=headers,
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["answer"] == "Paris is the capital of France."
    decided = (await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=headers)).json()
    assert decided["status"] == "approved"
    assert decided["decided_by"] == agent.user.id


async def test_an_undecided_plan_expires_and_is_not_run(
    start_agent: StartAgent, clock: FrozenClock
) -> None:
    model = france()
    agent = await start(start_agent, model, approval_timeout_seconds=600)
    body = await paused(agent)
    [approval] = body["approvals"]
    service = ApprovalService(agent.resources)
    assert await service.sweep() == 0  # not due yet
    clock.advance(601)
    assert await service.sweep() == 1

    conversation = await wait_idle(agent.client, agent.user.headers, body["conversation_id"])
    assert "expired" in conversation["messages"][-1]["content"]
    assert (await run_of(agent, body["run_id"]))["status"] == "success"
    assert dict(model.kinds) == {"plan": 1}  # no step ran
    detail = (
        await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=agent.user.headers)
    ).json()
    assert detail["status"] == "expired"
    assert [h["kind"] for h in detail["history"]] == ["requested", "expired", "resumed"]
