"""Retention on both backends: checkpoints pruned to the history a thread needs, threads with a
run in progress left alone, idle conversations and expired tokens removed; `mai prune`."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from app.cli import cli
from app.core.clock import FrozenClock
from app.models import Conversation, Message, UsageDaily, UsageEvent
from app.services.retention import retention_for
from tests.api.agent_helpers import Gate
from tests.conftest import Agent, StartAgent
from tests.fake_llm import ask_tools, responding, scripted, tool_call

pytestmark = pytest.mark.usefixtures("backend")


def _direct(messages: list[Any]) -> Any:
    """A model that routes every turn directly and answers by echoing the question number."""
    if messages and '{"route"' in str(messages[0].content):
        return '{"route": "direct"}'
    return f"Answer {len(messages)}."


async def _checkpoints(agent: Agent, thread_id: str) -> list[Any]:
    saver = agent.resources.checkpointer
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    return [item async for item in saver.alist(config)]


async def _turns(agent: Agent, count: int, conversation_id: str | None = None) -> str:
    for index in range(count):
        body: dict[str, Any] = {"message": f"Question {index}?"}
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        response = await agent.ask(**body)
        assert response.status_code == 200, response.text
        conversation_id = response.json()["conversation_id"]
    assert conversation_id is not None
    return conversation_id


async def test_checkpoints_pruned_to_the_history(start_agent: StartAgent) -> None:
    agent = await start_agent(responding(_direct), checkpoint_history=3)
    cid = await _turns(agent, 4)
    before = await _checkpoints(agent, cid)
    assert len(before) > 3
    state_before = await agent.resources.agent_graph.aget_state(
        {"configurable": {"thread_id": cid}}
    )

    dry = await retention_for(agent.resources).run(dry_run=True)
    assert dry.checkpoints.checkpoints == len(before) - 3
    assert len(await _checkpoints(agent, cid)) == len(before)

    report = await retention_for(agent.resources).run()
    assert report.checkpoints.checkpoints == len(before) - 3
    after = await _checkpoints(agent, cid)
    # The newest three are the ones kept, the latest among them.
    assert [c.config for c in after] == [c.config for c in before[:3]]
    state_after = await agent.resources.agent_graph.aget_state({"configurable": {"thread_id": cid}})
    assert state_after.values["messages"] == state_before.values["messages"]
    # The conversation goes on from where it was.
    await _turns(agent, 1, cid)
    detail = await agent.client.get(
        f"/api/v1/agent/conversations/{cid}", headers=agent.user.headers
    )
    assert len(detail.json()["messages"]) == 10
    assert (await retention_for(agent.resources).run()).checkpoints.checkpoints > 0


async def test_thread_with_a_run_in_progress_is_left_alone(start_agent: StartAgent) -> None:
    gate = Gate()
    agent = await start_agent(
        scripted(
            *[{"route": "direct"}, "One.", {"route": "direct"}, "Two."],
            {"route": "tools"},
            ask_tools(tool_call("wait_gate", {})),
            "Done.",
        ),
        checkpoint_history=1,
    )
    gate.install(agent.resources)
    cid = await _turns(agent, 2)
    running = asyncio.create_task(agent.ask(message="wait", conversation_id=cid))
    await asyncio.wait_for(gate.entered.wait(), timeout=30)
    held = {c.config["configurable"]["checkpoint_id"] for c in await _checkpoints(agent, cid)}
    assert len(held) > 1
    report = await retention_for(agent.resources).run()
    assert report.checkpoints.checkpoints == 0
    # Every checkpoint is still there (the running turn may have added more meanwhile).
    now = {c.config["configurable"]["checkpoint_id"] for c in await _checkpoints(agent, cid)}
    assert held <= now
    gate.release.set()
    assert (await running).status_code == 200
    assert (await retention_for(agent.resources).run()).checkpoints.checkpoints > 0
    assert len(await _checkpoints(agent, cid)) == 1


async def test_idle_conversations_and_expired_tokens_are_removed(
    start_agent: StartAgent, clock: FrozenClock
) -> None:
    agent = await start_agent(responding(_direct), thread_ttl_days=1)
    cid = await _turns(agent, 1)
    assert (await retention_for(agent.resources).run()).conversations == 0

    clock.advance(timedelta(days=2))
    dry = await retention_for(agent.resources).run(dry_run=True)
    assert dry.conversations == 1
    report = await retention_for(agent.resources).run()
    assert report.conversations == 1
    assert await _checkpoints(agent, cid) == []
    async with agent.resources.sessionmaker() as session:
        assert await session.get(Conversation, uuid.UUID(cid)) is None
        assert (
            await session.scalars(select(Message).where(Message.conversation_id == uuid.UUID(cid)))
        ).all() == []

    # The sign-up's refresh token lives MAI_REFRESH_TOKEN_TTL_DAYS (30).
    assert (await retention_for(agent.resources).run()).refresh_tokens == 0
    clock.advance(timedelta(days=31))
    assert (await retention_for(agent.resources).run(dry_run=True)).refresh_tokens >= 1
    assert (await retention_for(agent.resources).run()).refresh_tokens >= 1
    assert (await retention_for(agent.resources).run()).refresh_tokens == 0


async def test_mai_prune_prints_what_it_removed(
    start_agent: StartAgent, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await start_agent(responding(_direct))
    cid = await _turns(agent, 2)
    total = len(await _checkpoints(agent, cid))
    settings = agent.resources.settings
    for name in list(os.environ):
        if name.startswith("MAI_"):
            monkeypatch.delenv(name)
    env = {"MAI_DATA_DIR": str(settings.data_dir), "MAI_CHECKPOINT_HISTORY": "2"}
    if settings.uses_postgres:
        env["MAI_DATABASE_URL"] = settings.effective_database_url
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        # The command runs its own event loop: off this test's loop, in a thread.
        return runner.invoke(cli, ["prune", *args], env=env)

    dry = await asyncio.to_thread(invoke, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would remove {total - 2} checkpoint(s)" in dry.stdout
    assert len(await _checkpoints(agent, cid)) == total
    done = await asyncio.to_thread(invoke)
    assert done.exit_code == 0, done.output
    assert f"removed {total - 2} checkpoint(s)" in done.stdout
    assert len(await _checkpoints(agent, cid)) == 2


async def test_old_usage_events_are_rolled_up_into_days(
    start_agent: StartAgent, clock: FrozenClock
) -> None:
    agent = await start_agent(responding(_direct), usage_retention_days=7)
    await _turns(agent, 3)
    # Usage is recorded just after each turn's answer: wait for the third event.
    for _ in range(200):
        async with agent.resources.sessionmaker() as session:
            events = (await session.scalars(select(UsageEvent))).all()
        if len(events) >= 3:
            break
        await asyncio.sleep(0.05)
    assert len(events) >= 3
    tokens_in = sum(e.input_tokens for e in events)
    tokens_out = sum(e.output_tokens for e in events)
    assert (await retention_for(agent.resources).run()).usage_events == 0

    clock.advance(timedelta(days=8))
    assert (await retention_for(agent.resources).run(dry_run=True)).usage_events == len(events)
    report = await retention_for(agent.resources).run()
    assert report.usage_events == len(events)
    assert report.usage_days >= 1
    async with agent.resources.sessionmaker() as session:
        assert (await session.scalars(select(UsageEvent))).all() == []
        days = (await session.scalars(select(UsageDaily))).all()
    assert sum(d.events for d in days) == len(events)
    assert sum(d.input_tokens for d in days) == tokens_in
    assert sum(d.output_tokens for d in days) == tokens_out
    assert {d.user_id for d in days} == {uuid.UUID(agent.user.id)}
    assert (await retention_for(agent.resources).run()).usage_events == 0


async def test_the_background_sweeper_prunes(start_agent: StartAgent) -> None:
    agent = await start_agent(
        responding(_direct), checkpoint_history=2, retention_sweep_seconds=0.2
    )
    cid = await _turns(agent, 2)
    for _ in range(300):
        if len(await _checkpoints(agent, cid)) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(await _checkpoints(agent, cid)) == 2


async def test_one_process_prunes_at_a_time_on_postgres(
    start_agent: StartAgent, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("the retention lock is PostgreSQL's; SQLite serialises writers itself")
    agent = await start_agent(responding(_direct), checkpoint_history=1)
    cid = await _turns(agent, 1)
    total = len(await _checkpoints(agent, cid))
    # Another process's pass in progress: its session holds the advisory lock.
    async with agent.resources.engine.connect() as other:
        await other.execute(text("SELECT pg_advisory_lock(4172031554)"))
        await other.commit()
        report = await retention_for(agent.resources).run()
        await other.execute(text("SELECT pg_advisory_unlock(4172031554)"))
        await other.commit()
    assert report.skipped
    assert report.lines() == ["another MAI process is pruning right now; nothing was done"]
    assert len(await _checkpoints(agent, cid)) == total
    assert (await retention_for(agent.resources).run()).checkpoints.checkpoints == total - 1
