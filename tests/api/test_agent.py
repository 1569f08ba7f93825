"""The agent API: turns over JSON and SSE, conversations, locking, isolation, durability."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from app.core.clock import FrozenClock
from app.core.resources import Resources
from app.models import AgentRun, RunStatus
from tests.api.agent_helpers import Gate, parse_sse, wait_idle
from tests.conftest import (
    AppFactory,
    SettingsFactory,
    StartAgent,
    client_for,
    register,
)
from tests.fake_llm import ask_tools, responding, scripted, tool_call

pytestmark = pytest.mark.usefixtures("backend")

QUERY = "/api/v1/agent/query"
STREAM = "/api/v1/agent/stream"
CONVERSATIONS = "/api/v1/agent/conversations"


def direct(answer: str) -> list[Any]:
    """The replies of a turn the router answers directly."""
    return [{"route": "direct"}, answer]


async def test_query_answers_and_stores_the_turn(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Paris is the capital of France.")))
    response = await agent.client.post(
        QUERY, json={"message": "What is the capital of France?"}, headers=agent.user.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert body["answer"] == "Paris is the capital of France."
    assert body["tool_calls"] == []
    assert body["citations"] == []
    assert body["usage"]["input_tokens"] > 0
    assert body["usage"]["output_tokens"] > 0
    assert body["duration_ms"] > 0
    uuid.UUID(body["conversation_id"])
    uuid.UUID(body["message_id"])

    detail = (
        await agent.client.get(
            f"{CONVERSATIONS}/{body['conversation_id']}", headers=agent.user.headers
        )
    ).json()
    assert detail["title"] == "What is the capital of France?"
    assert detail["running"] is False
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris is the capital of France."),
    ]
    assistant = detail["messages"][1]
    assert assistant["id"] == body["message_id"]
    assert assistant["usage"] == body["usage"]
    assert assistant["model"] == "scripted-fake"

    async with agent.resources.sessionmaker() as session:
        run = await session.get(AgentRun, uuid.UUID(body["run_id"]))
        assert run is not None
        assert run.status == RunStatus.success.value
        assert run.finished_at is not None
        assert run.usage == body["usage"]


async def test_tool_turn_reports_tool_calls(start_agent: StartAgent) -> None:
    agent = await start_agent(
        scripted(
            {"route": "tools"},
            ask_tools(tool_call("calculator", {"expression": "2+2"}, call_id="call_sum")),
            "It is 4.",
        )
    )
    response = await agent.client.post(
        QUERY, json={"message": "What is 2+2?"}, headers=agent.user.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "It is 4."
    [call] = body["tool_calls"]
    # The model's call id, so a client matches the call it streamed to the finished one.
    assert call["id"] == "call_sum"
    assert call["name"] == "calculator"
    assert call["args"] == {"expression": "2+2"}
    assert call["status"] == "ok"
    assert "4" in str(call["result"])
    assert isinstance(call["duration_ms"], int | float)
    assert call["duration_ms"] >= 0

    detail = (
        await agent.client.get(
            f"{CONVERSATIONS}/{body['conversation_id']}", headers=agent.user.headers
        )
    ).json()
    assert detail["messages"][1]["tool_calls"][0]["name"] == "calculator"
    assert detail["messages"][1]["tool_calls"][0]["id"] == "call_sum"


async def test_second_turn_continues_the_thread(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Hello, Ada."), *direct("Your name is Ada.")))
    first = (
        await agent.client.post(
            QUERY, json={"message": "My name is Ada."}, headers=agent.user.headers
        )
    ).json()
    second = await agent.client.post(
        QUERY,
        json={"message": "What is my name?", "conversation_id": first["conversation_id"]},
        headers=agent.user.headers,
    )
    assert second.status_code == 200, second.text
    assert second.json()["conversation_id"] == first["conversation_id"]
    seen = " ".join(str(m.content) for m in agent.model.calls[-1])
    assert "My name is Ada." in seen
    assert "Hello, Ada." in seen

    page = (await agent.client.get(CONVERSATIONS, headers=agent.user.headers)).json()
    assert page["total"] == 1
    assert page["items"][0]["message_count"] == 4


async def test_stream_emits_the_langgraph_wire_format(start_agent: StartAgent) -> None:
    agent = await start_agent(
        scripted(
            {"route": "tools"},
            ask_tools(tool_call("calculator", {"expression": "6*7"})),
            "The answer is 42.",
        )
    )
    response = await agent.client.post(
        STREAM, json={"message": "What is 6*7?"}, headers=agent.user.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events, _ = parse_sse(response.text)
    names = [e.event for e in events]
    assert names[0] == "metadata"
    assert names[-2:] == ["values", "end"]
    assert "error" not in names
    metadata = events[0].data
    uuid.UUID(metadata["run_id"])
    conversation_id = metadata["conversation_id"]

    messages = [e.data for e in events if e.event == "messages"]
    tokens = [(chunk, meta) for chunk, meta in messages if chunk["type"] == "AIMessageChunk"]
    assert tokens, names
    for _, meta in tokens:
        assert meta["langgraph_node"] == "call_model"
    # As on a LangGraph server, the tool node's messages are streamed whole.
    tool_messages = [chunk for chunk, _ in messages if chunk["type"] == "tool"]
    assert [m["name"] for m in tool_messages] == ["calculator"]
    text = "".join(chunk["content"] for chunk, _ in tokens)
    assert text == "The answer is 42."

    updates = [e.data for e in events if e.event == "updates"]
    nodes = [next(iter(u)) for u in updates]
    assert nodes[0] == "route"
    assert "tools" in nodes
    assert nodes.index("tools") < len(nodes) - 1
    first_token = names.index("messages")
    assert names.index("updates") < first_token < names.index("values")

    values = events[-2].data
    assert values["answer"] == "The answer is 42."
    assert values["conversation_id"] == conversation_id
    assert values["run_id"] == metadata["run_id"]
    assert values["tool_calls"][0]["name"] == "calculator"
    assert events[-1].data is None

    detail = (
        await agent.client.get(f"{CONVERSATIONS}/{conversation_id}", headers=agent.user.headers)
    ).json()
    assert detail["messages"][-1]["content"] == "The answer is 42."


async def test_stream_sends_heartbeat_comments_while_idle(start_agent: StartAgent) -> None:
    gate = Gate()
    agent = await start_agent(
        scripted({"route": "tools"}, ask_tools(tool_call("wait_gate", {})), "Done."),
        agent_stream_heartbeat_seconds=0.05,
    )
    gate.install(agent.resources)

    async def open_later() -> None:
        await gate.entered.wait()
        await asyncio.sleep(0.3)
        gate.release.set()

    opener = asyncio.create_task(open_later())
    response = await agent.client.post(STREAM, json={"message": "wait"}, headers=agent.user.headers)
    await opener
    events, comments = parse_sse(response.text)
    assert comments >= 2
    assert [e.event for e in events][-2:] == ["values", "end"]


async def test_busy_conversation_is_409_and_frees_when_done(start_agent: StartAgent) -> None:
    gate = Gate()
    agent = await start_agent(
        scripted(
            *direct("First."),
            {"route": "tools"},
            ask_tools(tool_call("wait_gate", {})),
            "Gate done.",
            *direct("Third."),
        )
    )
    gate.install(agent.resources)
    headers = agent.user.headers
    cid = (await agent.client.post(QUERY, json={"message": "hi"}, headers=headers)).json()[
        "conversation_id"
    ]

    running = asyncio.create_task(
        agent.client.post(QUERY, json={"message": "wait", "conversation_id": cid}, headers=headers)
    )
    await asyncio.wait_for(gate.entered.wait(), 10)

    busy = await agent.client.post(
        QUERY, json={"message": "again", "conversation_id": cid}, headers=headers
    )
    assert busy.status_code == 409, busy.text
    assert busy.json()["error"] == "thread_busy"
    busy_stream = await agent.client.post(
        STREAM, json={"message": "again", "conversation_id": cid}, headers=headers
    )
    assert busy_stream.status_code == 409
    busy_delete = await agent.client.delete(f"{CONVERSATIONS}/{cid}", headers=headers)
    assert busy_delete.status_code == 409
    listed = (await agent.client.get(f"{CONVERSATIONS}/{cid}", headers=headers)).json()
    assert listed["running"] is True

    gate.release.set()
    done = await asyncio.wait_for(running, 10)
    assert done.status_code == 200, done.text
    assert done.json()["answer"] == "Gate done."
    third = await agent.client.post(
        QUERY, json={"message": "and now?", "conversation_id": cid}, headers=headers
    )
    assert third.status_code == 200, third.text
    detail = (await agent.client.get(f"{CONVERSATIONS}/{cid}", headers=headers)).json()
    # The refused messages were never stored: only accepted turns are.
    assert [m["content"] for m in detail["messages"] if m["role"] == "user"] == [
        "hi",
        "wait",
        "and now?",
    ]


async def test_client_that_disconnects_does_not_lose_the_turn(start_agent: StartAgent) -> None:
    gate = Gate()
    agent = await start_agent(
        scripted({"route": "tools"}, ask_tools(tool_call("wait_gate", {})), "Stored anyway.")
    )
    gate.install(agent.resources)
    headers = agent.user.headers
    request = asyncio.create_task(
        agent.client.post(STREAM, json={"message": "go"}, headers=headers)
    )
    await asyncio.wait_for(gate.entered.wait(), 10)
    request.cancel()  # the client goes away mid-turn
    with pytest.raises(asyncio.CancelledError):
        await request
    gate.release.set()

    page = (await agent.client.get(CONVERSATIONS, headers=headers)).json()
    cid = page["items"][0]["id"]
    detail = await wait_idle(agent.client, headers, cid)
    assert [m["content"] for m in detail["messages"]] == ["go", "Stored anyway."]


async def test_other_users_conversations_are_404(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Mine.")))
    cid = (
        await agent.client.post(QUERY, json={"message": "mine"}, headers=agent.user.headers)
    ).json()["conversation_id"]
    other = await register(agent.client)
    url = f"{CONVERSATIONS}/{cid}"
    for response in (
        await agent.client.get(url, headers=other.headers),
        await agent.client.patch(url, json={"title": "x"}, headers=other.headers),
        await agent.client.delete(url, headers=other.headers),
        await agent.client.post(
            QUERY, json={"message": "hi", "conversation_id": cid}, headers=other.headers
        ),
        await agent.client.post(
            STREAM, json={"message": "hi", "conversation_id": cid}, headers=other.headers
        ),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "conversation_not_found"
    assert (await agent.client.get(CONVERSATIONS, headers=other.headers)).json()["total"] == 0
    missing = await agent.client.get(f"{CONVERSATIONS}/{uuid.uuid4()}", headers=agent.user.headers)
    assert missing.status_code == 404
    assert (await agent.client.get(CONVERSATIONS)).status_code == 401
    assert (await agent.client.post(QUERY, json={"message": "hi"})).status_code == 401


async def test_list_rename_and_delete(start_agent: StartAgent, clock: FrozenClock) -> None:
    agent = await start_agent(scripted(*direct("A."), *direct("B."), *direct("C.")))
    headers = agent.user.headers
    ids = []
    for text in ("first " * 20, "second", "third"):
        body = (await agent.client.post(QUERY, json={"message": text}, headers=headers)).json()
        ids.append(body["conversation_id"])
        clock.advance(1)
    page = (await agent.client.get(CONVERSATIONS, params={"limit": 2}, headers=headers)).json()
    assert page["total"] == 3
    assert page["limit"] == 2
    assert [item["id"] for item in page["items"]] == [ids[2], ids[1]]
    assert page["items"][0]["message_count"] == 2
    rest = (
        await agent.client.get(CONVERSATIONS, params={"limit": 2, "offset": 2}, headers=headers)
    ).json()
    [oldest] = rest["items"]
    assert oldest["id"] == ids[0]
    assert len(oldest["title"]) <= 60
    assert oldest["title"].startswith("first first")

    renamed = await agent.client.patch(
        f"{CONVERSATIONS}/{ids[0]}", json={"title": "  Trip plans "}, headers=headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "Trip plans"
    empty = await agent.client.patch(
        f"{CONVERSATIONS}/{ids[0]}", json={"title": " "}, headers=headers
    )
    assert empty.status_code == 422

    checkpointer = agent.resources.checkpointer
    assert checkpointer is not None
    config: Any = {"configurable": {"thread_id": ids[0]}}
    assert await checkpointer.aget_tuple(config) is not None
    deleted = await agent.client.delete(f"{CONVERSATIONS}/{ids[0]}", headers=headers)
    assert deleted.status_code == 204
    assert await checkpointer.aget_tuple(config) is None
    assert (await agent.client.get(f"{CONVERSATIONS}/{ids[0]}", headers=headers)).status_code == 404
    async with agent.resources.sessionmaker() as session:
        runs = await session.execute(
            select(AgentRun).where(AgentRun.conversation_id == uuid.UUID(ids[0]))
        )
        assert runs.scalars().all() == []
    assert (await agent.client.get(CONVERSATIONS, headers=headers)).json()["total"] == 2


async def test_history_survives_a_new_app_instance(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory()
    model = scripted(*direct("Noted: blue."), *direct("You like blue."))
    app = await app_factory(settings, chat_model=model)
    async with client_for(app) as client:
        account = await register(client)
        cid = (
            await client.post(QUERY, json={"message": "I like blue."}, headers=account.headers)
        ).json()["conversation_id"]
    await app_factory.stop(app)

    again = await app_factory(settings, chat_model=model)
    async with client_for(again) as client:
        detail = await client.get(f"{CONVERSATIONS}/{cid}", headers=account.headers)
        assert detail.status_code == 200, detail.text
        assert [m["content"] for m in detail.json()["messages"]] == ["I like blue.", "Noted: blue."]
        follow = await client.post(
            QUERY,
            json={"message": "What do I like?", "conversation_id": cid},
            headers=account.headers,
        )
        assert follow.status_code == 200, follow.text
        seen = " ".join(str(m.content) for m in model.calls[-1])
        assert "I like blue." in seen  # the thread came back from the checkpointer


async def test_unreachable_llm_is_503_naming_the_url(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(llm_max_retries=0)
    app = await app_factory(settings)  # no chat_model: the real ChatOpenAI path
    async with client_for(app) as client:
        account = await register(client)
        response = await client.post(QUERY, json={"message": "hello"}, headers=account.headers)
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["error"] == "llm_unavailable"
        assert "http://127.0.0.1:9/v1" in body["detail"]

        stream = await client.post(STREAM, json={"message": "hello"}, headers=account.headers)
        assert stream.status_code == 503
        assert stream.json()["error"] == "llm_unavailable"

        # The failed turns kept the user's message and recorded the run as failed.
        page = (await client.get(CONVERSATIONS, headers=account.headers)).json()
        assert page["total"] == 2
        detail = (
            await client.get(f"{CONVERSATIONS}/{page['items'][0]['id']}", headers=account.headers)
        ).json()
        assert [(m["role"], m["content"]) for m in detail["messages"]] == [("user", "hello")]
        assert detail["running"] is False
        resources: Resources = app.state.resources
        async with resources.sessionmaker() as session:
            runs = (await session.execute(select(AgentRun))).scalars().all()
        assert {r.status for r in runs} == {"error"}
        assert {r.error_code for r in runs} == {"llm_unavailable"}


async def test_llm_failing_mid_turn_is_503_and_an_error_event(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(llm_model="some-model", llm_max_retries=0, llm_timeout_seconds=5)
    app = await app_factory(settings)  # a ChatOpenAI against a closed port
    async with client_for(app) as client:
        account = await register(client)
        response = await client.post(QUERY, json={"message": "hello"}, headers=account.headers)
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "llm_unavailable"
        assert "http://127.0.0.1:9/v1" in response.json()["detail"]

        stream = await client.post(STREAM, json={"message": "hello"}, headers=account.headers)
        assert stream.status_code == 200
        events, _ = parse_sse(stream.text)
        assert [e.event for e in events] == ["metadata", "error", "end"]
        assert events[1].data["error"] == "llm_unavailable"
        assert "http://127.0.0.1:9/v1" in events[1].data["detail"]


async def test_scripted_connection_error_fails_the_run_and_keeps_the_message(
    start_agent: StartAgent,
) -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    agent = await start_agent(
        scripted({"route": "direct"}, openai.APIConnectionError(request=request), *direct("Ok."))
    )
    headers = agent.user.headers
    failed = await agent.client.post(QUERY, json={"message": "first try"}, headers=headers)
    assert failed.status_code == 503
    assert failed.json()["error"] == "llm_unavailable"
    cid = (await agent.client.get(CONVERSATIONS, headers=headers)).json()["items"][0]["id"]
    retry = await agent.client.post(
        QUERY, json={"message": "second try", "conversation_id": cid}, headers=headers
    )
    assert retry.status_code == 200, retry.text
    detail = (await agent.client.get(f"{CONVERSATIONS}/{cid}", headers=headers)).json()
    assert [m["content"] for m in detail["messages"]] == ["first try", "second try", "Ok."]


@pytest.mark.parametrize(
    "body",
    [
        {"message": ""},
        {"message": "   "},
        {"message": "x" * 10_001},
        {},
        {"message": "hi", "conversation_id": "not-a-uuid"},
    ],
)
async def test_invalid_messages_are_422(start_agent: StartAgent, body: dict[str, Any]) -> None:
    agent = await start_agent(scripted())
    for url in (QUERY, STREAM):
        response = await agent.client.post(url, json=body, headers=agent.user.headers)
        assert response.status_code == 422, response.text
        error = response.json()
        assert error["error"] == "validation_error"
        assert error["detail"]
    assert agent.model.calls == []


async def test_longest_message_is_accepted(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Long.")))
    response = await agent.client.post(
        QUERY, json={"message": "y" * 10_000}, headers=agent.user.headers
    )
    assert response.status_code == 200, response.text


async def test_the_lock_holds_across_app_instances(
    app_factory: AppFactory, settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    # Two processes sharing one database (Qdrant local mode needs a data dir of its own each);
    # the second serves the API only, so the turn runs on the first, where the gate is.
    secret = "s" * 40
    settings = settings_factory(jwt_secret=secret)
    other = settings_factory(
        jwt_secret=secret,
        data_dir=tmp_path / "other",
        database_url=settings.effective_database_url,
        run_workers_enabled=False,
    )
    gate = Gate()
    first = await app_factory(
        settings,
        chat_model=scripted({"route": "tools"}, ask_tools(tool_call("wait_gate", {})), "Done."),
    )
    gate.install(first.state.resources)
    second = await app_factory(other, chat_model=scripted())
    async with client_for(first) as one, client_for(second) as two:
        account = await register(one)
        running = asyncio.create_task(
            one.post(QUERY, json={"message": "wait"}, headers=account.headers)
        )
        await asyncio.wait_for(gate.entered.wait(), 10)
        cid = (await two.get(CONVERSATIONS, headers=account.headers)).json()["items"][0]["id"]
        busy = await two.post(
            QUERY, json={"message": "meanwhile", "conversation_id": cid}, headers=account.headers
        )
        assert busy.status_code == 409, busy.text
        gate.release.set()
        assert (await running).status_code == 200


def _route_direct_or_answer(messages: list[Any]) -> str:
    """A model for concurrent turns: routing calls choose `direct`, others answer."""
    if messages and '{"route"' in str(messages[0].content):
        return '{"route": "direct"}'
    return "Concurrent answer."


async def test_concurrent_turns_do_not_exhaust_the_pool(start_agent: StartAgent) -> None:
    # A turn gives back the request's connection, so turns outnumbering the pool all finish.
    agent = await start_agent(responding(_route_direct_or_answer), database_pool_size=1)
    headers = agent.user.headers

    async def turn(url: str) -> int:
        response = await agent.client.post(url, json={"message": "hi"}, headers=headers)
        return response.status_code

    codes = await asyncio.wait_for(
        asyncio.gather(*(turn(QUERY if i % 2 else STREAM) for i in range(12))), 60
    )
    assert codes == [200] * 12
    page = (await agent.client.get(CONVERSATIONS, headers=headers)).json()
    assert page["total"] == 12


def _malformed_output() -> openai.APIError:
    """The error llama.cpp sends inside a 200 stream when it cannot parse the model's tool call."""
    request = httpx.Request("POST", "http://127.0.0.1:1234/v1/chat/completions")
    return openai.APIError(
        "The model produced output that does not match the expected peg-native format",
        request=request,
        body=None,
    )


async def test_a_server_error_mid_stream_is_asked_again(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted({"route": "direct"}, _malformed_output(), "Ok."))
    response = await agent.client.post(
        QUERY, json={"message": "What is 1234 * 5678?"}, headers=agent.user.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["answer"] == "Ok."


async def test_a_repeated_server_error_mid_stream_is_503_and_the_thread_goes_on(
    start_agent: StartAgent,
) -> None:
    agent = await start_agent(
        scripted({"route": "direct"}, _malformed_output(), _malformed_output(), *direct("Fine."))
    )
    headers = agent.user.headers
    failed = await agent.client.post(QUERY, json={"message": "first"}, headers=headers)
    assert failed.status_code == 503, failed.text
    assert failed.json()["error"] == "llm_unavailable"
    assert "peg-native" in failed.json()["detail"]
    cid = (await agent.client.get(CONVERSATIONS, headers=headers)).json()["items"][0]["id"]
    retry = await agent.client.post(
        QUERY, json={"message": "second", "conversation_id": cid}, headers=headers
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["answer"] == "Fine."
