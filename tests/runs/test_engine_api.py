"""The run engine through /api/v1/agent: cancel, multitask strategies, join, queue, leases."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.models import AgentRun, RunStatus
from tests.api.agent_helpers import Gate
from tests.conftest import Agent, StartAgent, register
from tests.fake_llm import ask_tools, scripted, tool_call

QUERY = "/api/v1/agent/query"
STREAM = "/api/v1/agent/stream"
RUNS = "/api/v1/agent/runs"
CONVERSATIONS = "/api/v1/agent/conversations"


def direct(answer: str) -> list[Any]:
    """The replies of a turn the router answers directly."""
    return [{"route": "direct"}, answer]


def gated(*answer: str) -> list[Any]:
    """The replies of a turn that waits on the gate tool (then answers, if it gets that far)."""
    return [{"route": "tools"}, ask_tools(tool_call("wait_gate", {})), *answer]


def sse_with_ids(body: str) -> list[tuple[str, str, Any]]:
    """(id, event, data) of every event of an SSE body."""
    found = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = fields.get(key, "") + value.lstrip(" ")
        if "event" in fields:
            found.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
    return found


async def run_in(agent: Agent, cid: str, status: str) -> dict[str, Any]:
    """The conversation's run in `status` (waiting for it to appear)."""
    for _ in range(500):
        runs = await agent.client.get(f"{CONVERSATIONS}/{cid}/runs", headers=agent.user.headers)
        assert runs.status_code == 200, runs.text
        found = [r for r in runs.json() if r["status"] == status]
        if found:
            return dict(found[0])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {status} run on {cid}")


async def wait_status(agent: Agent, run_id: str, status: str) -> dict[str, Any]:
    """Poll a run until it has `status`."""
    for _ in range(500):
        run = (await agent.client.get(f"{RUNS}/{run_id}", headers=agent.user.headers)).json()
        if run["status"] == status:
            return dict(run)
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} never reached {status}: {run}")


async def messages_of(agent: Agent, cid: str) -> list[str]:
    """The contents of the conversation's stored messages, in order."""
    detail = await agent.client.get(f"{CONVERSATIONS}/{cid}", headers=agent.user.headers)
    return [m["content"] for m in detail.json()["messages"]]


async def start_gated_turn(
    agent: Agent, gate: Gate, cid: str
) -> tuple[asyncio.Task[httpx.Response], str]:
    """A turn that holds its thread until the gate opens; returns its request and run id."""
    request = asyncio.create_task(agent.ask("wait", conversation_id=cid))
    await asyncio.wait_for(gate.entered.wait(), 20)
    return request, (await run_in(agent, cid, "running"))["run_id"]


async def first_turn(agent: Agent) -> str:
    """Run the conversation's first (direct) turn; returns its id."""
    response = await agent.ask("hi")
    assert response.status_code == 200, response.text
    return str(response.json()["conversation_id"])


async def thread_messages(agent: Agent, cid: str) -> int:
    """How many messages the thread's latest checkpoint holds."""
    graph = agent.resources.graphs.get("assistant").graph
    state = await graph.aget_state({"configurable": {"thread_id": cid}})
    return len(state.values.get("messages", []))


async def test_cancel_interrupt_stops_the_run_and_keeps_its_progress(
    start_agent: StartAgent,
) -> None:
    gate = Gate()
    agent = await start_agent(scripted(*direct("First."), *gated(), *direct("After.")))
    gate.install(agent.resources)
    cid = await first_turn(agent)
    request, run_id = await start_gated_turn(agent, gate, cid)

    started = time.perf_counter()
    cancelled = await agent.client.post(f"{RUNS}/{run_id}/cancel", headers=agent.user.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert time.perf_counter() - started < 2.0
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"]["code"] == "run_cancelled"
    waited = await asyncio.wait_for(request, 10)
    assert waited.status_code == 409
    assert waited.json()["error"] == "run_cancelled"

    # interrupt keeps what the run did: its message and its checkpoints.
    assert await messages_of(agent, cid) == ["hi", "First.", "wait"]
    assert await thread_messages(agent, cid) > 2
    # The thread is free at once, and a finished run cannot be cancelled again.
    after = await agent.ask("next", conversation_id=cid)
    assert after.status_code == 200, after.text
    assert after.json()["answer"] == "After."
    again = await agent.client.post(f"{RUNS}/{run_id}/cancel", headers=agent.user.headers)
    assert again.status_code == 409
    assert again.json()["error"] == "run_not_active"


async def test_cancel_rollback_removes_what_the_run_added(start_agent: StartAgent) -> None:
    gate = Gate()
    agent = await start_agent(scripted(*direct("First."), *gated(), *direct("After.")))
    gate.install(agent.resources)
    cid = await first_turn(agent)
    before = await thread_messages(agent, cid)
    request, run_id = await start_gated_turn(agent, gate, cid)
    cancelled = await agent.client.post(
        f"{RUNS}/{run_id}/cancel", params={"action": "rollback"}, headers=agent.user.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    await asyncio.wait_for(request, 10)
    assert await messages_of(agent, cid) == ["hi", "First."]
    assert await thread_messages(agent, cid) == before
    after = await agent.ask("next", conversation_id=cid)
    assert after.status_code == 200, after.text
    assert await messages_of(agent, cid) == ["hi", "First.", "next", "After."]


async def test_enqueue_runs_after_the_current_run(start_agent: StartAgent) -> None:
    gate = Gate()
    agent = await start_agent(scripted(*direct("First."), *gated("Gate done."), *direct("Queued.")))
    gate.install(agent.resources)
    cid = await first_turn(agent)
    request, _ = await start_gated_turn(agent, gate, cid)
    queued = asyncio.create_task(
        agent.ask("next", conversation_id=cid, multitask_strategy="enqueue")
    )
    newest = await run_in(agent, cid, "pending")
    assert newest["queue_position"] == 0
    gate.release.set()
    assert (await asyncio.wait_for(request, 10)).json()["answer"] == "Gate done."
    second = await asyncio.wait_for(queued, 10)
    assert second.status_code == 200, second.text
    assert second.json()["answer"] == "Queued."
    assert await messages_of(agent, cid) == [
        "hi",
        "First.",
        "wait",
        "Gate done.",
        "next",
        "Queued.",
    ]


@pytest.mark.parametrize(
    ("strategy", "kept"), [("interrupt", ["wait"]), ("rollback", [])], ids=["interrupt", "rollback"]
)
async def test_a_new_run_can_cancel_the_current_one(
    start_agent: StartAgent, strategy: str, kept: list[str]
) -> None:
    gate = Gate()
    agent = await start_agent(scripted(*direct("First."), *gated(), *direct("Instead.")))
    gate.install(agent.resources)
    cid = await first_turn(agent)
    request, run_id = await start_gated_turn(agent, gate, cid)
    second = await agent.ask("instead", conversation_id=cid, multitask_strategy=strategy)
    assert second.status_code == 200, second.text
    assert second.json()["answer"] == "Instead."
    first = (await agent.client.get(f"{RUNS}/{run_id}", headers=agent.user.headers)).json()
    assert first["status"] == "cancelled"
    assert (await asyncio.wait_for(request, 10)).status_code == 409
    assert await messages_of(agent, cid) == ["hi", "First.", *kept, "instead", "Instead."]


async def test_join_replays_exactly_the_missed_events(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Streamed answer."), *direct("Another.")))
    streamed = await agent.client.post(
        STREAM,
        json={"message": "hi", "stream_mode": ["updates", "values"]},
        headers=agent.user.headers,
    )
    assert streamed.status_code == 200, streamed.text
    events = sse_with_ids(streamed.text)
    assert events[0][1] == "metadata"
    assert events[-1][1] == "end"
    assert "messages" not in {e[1] for e in events}  # stream_mode is honoured
    assert all(e[0] for e in events)
    run_id = events[0][2]["run_id"]

    whole = await agent.client.get(f"{RUNS}/{run_id}/stream", headers=agent.user.headers)
    assert sse_with_ids(whole.text) == events
    rest = await agent.client.get(
        f"{RUNS}/{run_id}/stream",
        headers={**agent.user.headers, "Last-Event-ID": events[1][0]},
    )
    assert sse_with_ids(rest.text) == events[2:]

    other = await agent.ask("another")
    foreign = await agent.client.get(
        f"{RUNS}/{other.json()['run_id']}/stream",
        headers={**agent.user.headers, "Last-Event-ID": events[1][0]},
    )
    assert foreign.status_code == 400
    assert foreign.json()["error"] == "invalid_last_event_id"


async def test_queue_limit_answers_503_with_retry_after(start_agent: StartAgent) -> None:
    gate = Gate()
    agent = await start_agent(
        scripted(*direct("First."), *gated("Gate done."), *direct("Waited.")),
        run_concurrency=1,
        run_queue_limit=1,
    )
    gate.install(agent.resources)
    cid = await first_turn(agent)
    request, _ = await start_gated_turn(agent, gate, cid)
    waiting = asyncio.create_task(agent.ask("in line"))
    for _ in range(200):
        page = (await agent.client.get(CONVERSATIONS, headers=agent.user.headers)).json()
        if page["total"] == 2:
            break
        await asyncio.sleep(0.02)
    other_cid = next(c["id"] for c in page["items"] if c["id"] != cid)
    pending = await run_in(agent, other_cid, "pending")
    assert pending["queue_position"] == 0

    full = await agent.ask("one too many")
    assert full.status_code == 503, full.text
    assert full.json()["error"] == "queue_full"
    assert int(full.headers["Retry-After"]) > 0

    gate.release.set()
    assert (await asyncio.wait_for(request, 10)).status_code == 200
    assert (await asyncio.wait_for(waiting, 10)).json()["answer"] == "Waited."


async def test_bad_run_input_is_a_clear_4xx(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Done.")))
    done = await agent.ask("hi")
    run_id = done.json()["run_id"]
    headers = agent.user.headers
    bad_strategy = await agent.ask("hi", multitask_strategy="sometimes")
    assert bad_strategy.status_code == 422
    bad_mode = await agent.client.post(
        STREAM, json={"message": "hi", "stream_mode": "everything"}, headers=headers
    )
    assert bad_mode.status_code == 422
    assert (await agent.client.get(f"{RUNS}/{uuid.uuid4()}", headers=headers)).status_code == 404
    bad_action = await agent.client.post(
        f"{RUNS}/{run_id}/cancel", params={"action": "explode"}, headers=headers
    )
    assert bad_action.status_code == 422
    finished = await agent.client.post(f"{RUNS}/{run_id}/cancel", headers=headers)
    assert finished.status_code == 409
    stranger = await register(agent.client)
    hidden = await agent.client.get(f"{RUNS}/{run_id}", headers=stranger.headers)
    assert hidden.status_code == 404
    run = (await agent.client.get(f"{RUNS}/{run_id}", headers=headers)).json()
    assert run["status"] == "success"
    assert run["attempt"] == 1


async def _orphan(
    agent: Agent, cid: str, attempt: int, base_checkpoint_id: str | None = None
) -> uuid.UUID:
    """A run left `running` by a worker that died: its lease ran out, the thread is held
    (`base_checkpoint_id`: where the thread stood when the dead worker first claimed it)."""
    from app.models import Conversation

    resources = agent.resources
    now = resources.clock.now()
    run_id = uuid.uuid4()
    async with resources.sessionmaker() as session:
        conversation = await session.get(Conversation, uuid.UUID(cid))
        assert conversation is not None
        session.add(
            AgentRun(
                id=run_id,
                conversation_id=conversation.id,
                user_id=conversation.user_id,
                status=RunStatus.running.value,
                input={"messages": [{"role": "user", "content": "orphaned"}]},
                attempt=attempt,
                base_checkpoint_id=base_checkpoint_id,
                lease_owner="w-dead",
                lease_expires_at=now - timedelta(seconds=1),
                created_at=now,
                started_at=now,
            )
        )
        conversation.active_run_id = run_id
        await session.commit()
    return run_id


async def test_an_expired_lease_is_resumed_by_another_worker(start_agent: StartAgent) -> None:
    agent = await start_agent(
        scripted(*direct("First."), *direct("Recovered.")), run_lease_seconds=1
    )
    cid = await first_turn(agent)
    run_id = await _orphan(agent, cid, attempt=1)
    run = await wait_status(agent, str(run_id), "success")
    assert run["attempt"] == 2
    assert (await messages_of(agent, cid))[-1] == "Recovered."
    detail = (await agent.client.get(f"{CONVERSATIONS}/{cid}", headers=agent.user.headers)).json()
    assert detail["running"] is False


async def test_a_step_that_wrote_its_results_but_not_its_checkpoint_is_resumed(
    start_agent: StartAgent,
) -> None:
    """A worker that died after a step's task stored its writes and before the step's
    checkpoint: the thread has no `next` node yet still a task, and the next attempt applies
    its writes and goes on (rather than taking the thread for finished)."""
    from langchain_core.messages import AIMessage

    agent = await start_agent(scripted(*direct("unused")), run_lease_seconds=1)
    headers = agent.user.headers
    thread = await agent.client.post("/threads", json={}, headers=headers)
    assert thread.status_code == 200, thread.text
    cid = thread.json()["thread_id"]
    paused = await agent.client.post(
        f"/threads/{cid}/runs/wait",
        json={
            "assistant_id": "assistant",
            "input": {"messages": [{"role": "user", "content": "hi"}]},
            "interrupt_before": ["call_model"],
        },
        headers=headers,
    )
    assert paused.status_code == 200, paused.text
    graph = agent.resources.graphs.get("assistant").graph
    config = {"configurable": {"thread_id": cid}}
    before = await graph.aget_state(config)
    [task] = before.tasks
    assert task.name == "call_model"
    # The model's answer and the router's choice, as the dead worker's call_model wrote them.
    await graph.checkpointer.aput_writes(
        before.config,
        [
            ("messages", [AIMessage("Recovered from the stored writes.")]),
            ("branch:to:synthesize", None),
        ],
        task.id,
    )
    stored = await graph.aget_state(config)
    assert stored.next == ()
    assert [t.name for t in stored.tasks] == ["call_model"]

    run_id = await _orphan(agent, cid, attempt=1, base_checkpoint_id="")
    run = await wait_status(agent, str(run_id), "success")
    assert run["attempt"] == 2
    # The scripted model was not asked again: its answer came from the stored writes.
    assert (await messages_of(agent, cid))[-1] == "Recovered from the stored writes."
    assert (await graph.aget_state(config)).tasks == ()


async def test_a_run_past_its_attempts_ends_error_and_frees_the_thread(
    start_agent: StartAgent,
) -> None:
    agent = await start_agent(
        scripted(*direct("First."), *direct("Next.")), run_lease_seconds=1, run_max_attempts=2
    )
    cid = await first_turn(agent)
    run_id = await _orphan(agent, cid, attempt=2)
    run = await wait_status(agent, str(run_id), "error")
    assert run["error"]["code"] == "run_abandoned"
    after = await agent.ask("next", conversation_id=cid)
    assert after.status_code == 200, after.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_runs_stream_and_join_while_redis_is_down(start_agent: StartAgent) -> None:
    # Nothing listens on port 1: the event log falls back to this process's own.
    agent = await start_agent(
        scripted(*direct("Still streaming.")), redis_url="redis://127.0.0.1:1/0"
    )
    streamed = await agent.client.post(STREAM, json={"message": "hi"}, headers=agent.user.headers)
    assert streamed.status_code == 200, streamed.text
    events = sse_with_ids(streamed.text)
    assert [e[1] for e in events][-2:] == ["values", "end"]
    assert events[-2][2]["answer"] == "Still streaming."
    joined = await agent.client.get(
        f"{RUNS}/{events[0][2]['run_id']}/stream",
        headers={**agent.user.headers, "Last-Event-ID": events[0][0]},
    )
    assert sse_with_ids(joined.text) == events[1:]


async def test_the_events_stream_mode_streams_callback_events_beside_the_other_modes(
    start_agent: StartAgent,
) -> None:
    agent = await start_agent(scripted(*direct("Evented answer."), *direct("Plain answer.")))
    headers = agent.user.headers
    thread = (await agent.client.post("/threads", json={}, headers=headers)).json()["thread_id"]
    ask = {"messages": [{"role": "user", "content": "hi"}]}
    streamed = await agent.client.post(
        f"/threads/{thread}/runs/stream",
        json={"assistant_id": "assistant", "input": ask, "stream_mode": ["events", "updates"]},
        headers=headers,
    )
    assert streamed.status_code == 200, streamed.text
    parsed = sse_with_ids(streamed.text)
    names = [name for _, name, _ in parsed]
    assert names[0] == "metadata", names
    assert "error" not in names, names
    events = [data for _, name, data in parsed if name == "events"]
    root = events[0]
    assert root["event"] == "on_chain_start", root
    assert root["parent_ids"] == [], root
    assert root["data"]["input"]["messages"][0]["content"] == "hi"
    assert events[-1]["event"] == "on_chain_end"
    assert events[-1]["run_id"] == root["run_id"]
    # The root's own stream parts are the other modes' parts, not events.
    assert not [
        e for e in events if e["event"] == "on_chain_stream" and e["run_id"] == root["run_id"]
    ]
    tokens = "".join(
        e["data"]["chunk"]["content"] for e in events if e["event"] == "on_chat_model_stream"
    )
    assert "Evented answer." in tokens, tokens
    updates = [data for _, name, data in parsed if name == "updates"]
    assert updates, names
    assert "values" not in names, names
    assert "messages" not in names, names
    run_id = parsed[0][2]["run_id"]
    run = (await agent.client.get(f"{RUNS}/{run_id}", headers=headers)).json()
    assert run["status"] == "success"
    assert await messages_of(agent, thread) == ["hi", "Evented answer."]

    # Without `events`, the same thread streams as before: no callback events.
    plain = await agent.client.post(
        f"/threads/{thread}/runs/stream",
        json={"assistant_id": "assistant", "input": ask, "stream_mode": ["updates"]},
        headers=headers,
    )
    assert "events" not in {name for _, name, _ in sse_with_ids(plain.text)}
