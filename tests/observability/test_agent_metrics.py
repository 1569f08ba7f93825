"""The metrics the running service records: agent runs, nodes, LLM calls, tokens, cost, tools,
rate-limit rejections and knowledge-base ingestion and search, read back from GET /metrics.

Counters are process-wide and other tests add to them, so every check compares a scrape after
the action with one before it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import StartAgent, register
from tests.fake_llm import scripted
from tests.kb.support import ingest
from tests.observability.conftest import QUERY, tool_turn
from tests.observability.promtext import Samples, parse, value

pytestmark = pytest.mark.usefixtures("backend")

MODEL = "scripted-fake"


async def scrape(client: httpx.AsyncClient) -> Samples:
    """One scrape of /metrics."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a sample grew between two scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)


async def scrape_after_run(client: httpx.AsyncClient, before: Samples, status: str) -> Samples:
    """A scrape once the turn's run hooks have run (just after its answer was sent)."""
    for _ in range(250):
        after = await scrape(client)
        if delta(before, after, "mai_agent_runs_total", graph="assistant", status=status):
            return after
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {status} run was counted")


async def test_a_tool_turn_shows_up_in_run_token_tool_and_node_series(
    start_agent: StartAgent, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"models:\n  {MODEL}: {{input: 1.0, output: 2.0}}\n")
    agent = await start_agent(scripted(*tool_turn()), model_prices_file=prices)
    before = await scrape(agent.client)

    response = await agent.client.post(
        QUERY, json={"message": "What is 2+2?"}, headers=agent.user.headers
    )
    assert response.status_code == 200, response.text
    turn = response.json()
    assert turn["tool_calls"][0]["name"] == "calculator"
    tokens_in, tokens_out = turn["usage"]["input_tokens"], turn["usage"]["output_tokens"]
    assert tokens_in > 0
    assert tokens_out > 0
    after = await scrape_after_run(agent.client, before, "success")

    # The run, by graph and status.
    assert delta(before, after, "mai_agent_runs_total", graph="assistant", status="success") == 1
    # Tokens by model and direction: the turn's usage, as stored with the answer.
    assert delta(
        before, after, "mai_llm_tokens_total", model=MODEL, direction="input", graph="assistant"
    ) == (tokens_in)
    assert delta(
        before, after, "mai_llm_tokens_total", model=MODEL, direction="output", graph="assistant"
    ) == (tokens_out)
    # Cost from the price file: USD per million tokens.
    cost = delta(before, after, "mai_llm_cost_usd_total", model=MODEL, graph="assistant")
    assert cost == pytest.approx((tokens_in * 1.0 + tokens_out * 2.0) / 1_000_000)
    # The tool call, by tool and status, with its duration.
    assert delta(before, after, "mai_tool_calls_total", tool="calculator", status="ok") == 1
    assert delta(before, after, "mai_tool_call_duration_seconds_count", tool="calculator") == 1
    # Every node that ran, timed: route, load_context, call_model twice, tools, synthesize.
    nodes = {"route": 1, "load_context": 1, "call_model": 2, "tools": 1, "synthesize": 1}
    for node, runs in nodes.items():
        name = "mai_agent_node_duration_seconds_count"
        assert delta(before, after, name, graph="assistant", node=node) == runs, node
    # Three model calls (route, then call_model twice), all streamed (the graph streams).
    assert delta(before, after, "mai_llm_calls_total", model=MODEL, status="ok") == 3
    assert delta(before, after, "mai_llm_call_duration_seconds_count", model=MODEL) == 3
    assert delta(before, after, "mai_llm_time_to_first_token_seconds_count", model=MODEL) == 3


async def test_a_run_paused_for_approval_counts_each_tool_execution_once(
    start_agent: StartAgent,
) -> None:
    agent = await start_agent(
        scripted(*tool_turn()), approval_required_tools=["calculator"], rate_limit_per_minute=0
    )
    before = await scrape(agent.client)
    paused = await agent.client.post(
        QUERY, json={"message": "What is 2+2?"}, headers=agent.user.headers
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "awaiting_approval"
    middle = await scrape_after_run(agent.client, before, "interrupted")
    assert delta(before, middle, "mai_tool_calls_total", tool="calculator", status="ok") == 0
    approval_id = paused.json()["approvals"][0]["id"]
    decided = await agent.client.post(
        f"/api/v1/approvals/{approval_id}/approve", json={}, headers=agent.user.headers
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["answer"] == "It is 4."
    after = await scrape_after_run(agent.client, middle, "success")
    # The tools node ran twice (interrupted, then resumed); the calculator ran once.
    assert delta(before, after, "mai_tool_calls_total", tool="calculator", status="ok") == 1
    assert delta(before, after, "mai_agent_runs_total", graph="assistant", status="success") == 1
    assert (
        delta(before, after, "mai_agent_runs_total", graph="assistant", status="interrupted") == 1
    )


async def test_a_failed_turn_counts_as_an_error_run_and_a_failed_llm_call(
    start_agent: StartAgent,
) -> None:
    import openai

    failure = openai.APIConnectionError(request=httpx.Request("POST", "http://llm/v1"))
    agent = await start_agent(scripted({"route": "direct"}, failure))
    before = await scrape(agent.client)
    response = await agent.client.post(QUERY, json={"message": "hi"}, headers=agent.user.headers)
    assert response.status_code == 503, response.text
    after = await scrape_after_run(agent.client, before, "error")
    assert delta(before, after, "mai_agent_runs_total", graph="assistant", status="error") == 1
    assert delta(before, after, "mai_llm_calls_total", model=MODEL, status="error") == 1
    assert delta(before, after, "mai_llm_calls_total", model=MODEL, status="ok") == 1


async def test_rate_limit_rejections_are_counted_by_scope(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(), rate_limit_per_minute=2, auth_rate_limit_per_minute=2)
    before = await scrape(agent.client)
    statuses = [
        (await agent.client.get("/api/v1/users/me", headers=agent.user.headers)).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    # Signing up was the first attempt from this address: one sign-in passes, the next is 429.
    login = {"email": agent.user.email, "password": agent.user.password}
    codes = [
        (await agent.client.post("/api/v1/auth/login", json=login)).status_code for _ in range(2)
    ]
    assert codes == [200, 429]
    after = await scrape(agent.client)
    assert delta(before, after, "mai_rate_limit_rejections_total", scope="user") == 1
    assert delta(before, after, "mai_rate_limit_rejections_total", scope="auth-ip") == 1


async def test_kb_ingestion_and_search_series(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(), rate_limit_per_minute=0)
    client, headers = agent.client, agent.user.headers
    before = await scrape(client)
    ready = await ingest(
        client, headers, "pump.txt", b"The HX-200 pump needs a new gasket every year."
    )
    assert ready["status"] == "ready"
    failed = await ingest(client, headers, "blank.pdf", b"%PDF-1.4 not really a pdf")
    assert failed["status"] == "failed"
    search = await client.post("/api/v1/kb/search", headers=headers, json={"query": "gasket"})
    assert search.status_code == 200, search.text
    after = await scrape(client)
    assert delta(before, after, "mai_kb_ingestion_jobs_total", status="queued") == 2
    assert delta(before, after, "mai_kb_ingestion_jobs_total", status="succeeded") == 1
    assert delta(before, after, "mai_kb_ingestion_jobs_total", status="failed") == 1
    assert delta(before, after, "mai_kb_chunks_indexed_total") == ready["chunk_count"] >= 1
    assert delta(before, after, "mai_kb_search_duration_seconds_count") == 1


async def test_cache_lookups_are_counted_as_hits_and_misses(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted())
    before = await scrape(agent.client)
    for _ in range(2):
        response = await agent.client.get("/api/v1/analytics/usage", headers=agent.user.headers)
        assert response.status_code == 200, response.text
    after = await scrape(agent.client)
    # The first report is computed and cached, the second is served from the cache.
    hits = delta(before, after, "mai_cache_requests_total", cache="analytics", result="hit")
    misses = delta(before, after, "mai_cache_requests_total", cache="analytics", result="miss")
    assert hits >= 1
    assert hits == misses


async def test_metrics_of_a_second_user_are_not_split_by_user(start_agent: StartAgent) -> None:
    """Series carry no user or conversation labels (bounded cardinality)."""
    agent = await start_agent(scripted(*tool_turn(), *tool_turn()))
    other = await register(agent.client)
    for account in (agent.user, other):
        response = await agent.client.post(
            QUERY, json={"message": "What is 2+2?"}, headers=account.headers
        )
        assert response.status_code == 200, response.text
    samples = await scrape(agent.client)
    for (name, labels), _ in samples.items():
        if name.startswith(("mai_agent", "mai_llm", "mai_tool")):
            keys = {key for key, _ in labels}
            assert not keys & {"user", "user_id", "conversation_id", "run_id"}, name
