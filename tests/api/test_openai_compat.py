"""The OpenAI-compatible API in-process, on both backends: models, completions (plain and
streamed), sessions and stateless history, tools and approvals, errors in OpenAI's shape."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from app.models import AgentRun
from tests.conftest import StartAgent, register
from tests.fake_llm import ask_tools, scripted, tool_call

pytestmark = pytest.mark.usefixtures("backend")

MODELS = "/v1/models"
COMPLETIONS = "/v1/chat/completions"
CONVERSATIONS = "/api/v1/agent/conversations"
EMAIL = {"to": "ada@example.com", "subject": "Minutes", "body": "Here are the minutes."}


def direct(answer: str) -> list[Any]:
    """The replies of a turn the router answers directly."""
    return [{"route": "direct"}, answer]


def user_says(text: str, model: str = "mai-assistant", **body: Any) -> dict[str, Any]:
    """A completion request with one user message."""
    return {"model": model, "messages": [{"role": "user", "content": text}], **body}


def chunks_of(body: str) -> tuple[list[dict[str, Any]], bool]:
    """The JSON data of an OpenAI stream, and whether it ended with [DONE]."""
    items: list[dict[str, Any]] = []
    done = False
    for block in body.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].strip() for line in block.split("\n") if line.startswith("data:")]
        if not data:
            continue
        if data[0] == "[DONE]":
            done = True
            continue
        items.append(json.loads("\n".join(data)))
    return items, done


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an OpenAI error with this status and code; its error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["code"] == code, error
    assert error["message"]
    return dict(error)


async def usage_event_of(agent: Any, run_id: str) -> Any:
    """The agent-turn usage event of a run, once the engine's hook recorded it."""
    from sqlalchemy import select

    from app.models import UsageEvent

    deadline = asyncio.get_running_loop().time() + 30
    while True:
        async with agent.resources.sessionmaker() as session:
            found = (
                (
                    await session.execute(
                        select(UsageEvent).where(
                            UsageEvent.run_id == run_id, UsageEvent.kind == "agent_turn"
                        )
                    )
                )
                .scalars()
                .all()
            )
        if found:
            [event] = found
            return event
        assert asyncio.get_running_loop().time() < deadline, f"no usage event for run {run_id}"
        await asyncio.sleep(0.05)


async def assert_no_conversation(agent: Any, conversation_id: str) -> None:
    """Neither the conversation nor its run, messages or checkpoints are left."""
    detail = await agent.client.get(
        f"{CONVERSATIONS}/{conversation_id}", headers=agent.user.headers
    )
    assert detail.status_code == 404, detail.text
    listed = (await agent.client.get(CONVERSATIONS, headers=agent.user.headers)).json()
    assert conversation_id not in [c["id"] for c in listed["items"]]
    async with agent.resources.sessionmaker() as session:
        from sqlalchemy import func, select

        runs = await session.scalar(
            select(func.count())
            .select_from(AgentRun)
            .where(AgentRun.conversation_id == uuid.UUID(conversation_id))
        )
    assert runs == 0
    checkpoint = await agent.resources.checkpointer.aget_tuple(
        {"configurable": {"thread_id": conversation_id, "checkpoint_ns": ""}}
    )
    assert checkpoint is None


async def test_models_lists_the_offered_agents(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted())
    response = await agent.client.get(MODELS, headers=agent.user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["mai-assistant", "mai-planner"]
    assert {m["owned_by"] for m in body["data"]} == {"mai"}
    one = await agent.client.get(f"{MODELS}/mai-planner", headers=agent.user.headers)
    assert one.json()["id"] == "mai-planner"
    missing = await agent.client.get(f"{MODELS}/gpt-4o", headers=agent.user.headers)
    assert assert_openai_error(missing, 404, "model_not_found")["param"] == "model"

    anonymous = await agent.client.get(MODELS)
    assert assert_openai_error(anonymous, 401, "unauthorized")["type"] == "authentication_error"
    wrong = await agent.client.get(MODELS, headers={"Authorization": "Bearer not-a-token"})
    assert_openai_error(wrong, 401, wrong.json()["error"]["code"])
    # The rest of the API keeps MAI's own error shape.
    mai = await agent.client.get(CONVERSATIONS)
    assert set(mai.json()) >= {"error", "detail"}


async def test_models_follow_the_configured_graphs_and_prefix(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(), openai_graphs=["assistant"], openai_model_prefix="acme-")
    body = (await agent.client.get(MODELS, headers=agent.user.headers)).json()
    assert [m["id"] for m in body["data"]] == ["acme-assistant"]
    refused = await agent.client.post(
        COMPLETIONS, json=user_says("hi", model="planner"), headers=agent.user.headers
    )
    assert_openai_error(refused, 404, "model_not_found")


async def test_completion_answers_with_the_run_as_a_chat_completion(
    start_agent: StartAgent,
) -> None:
    agent = await start_agent(scripted(*direct("Paris is the capital of France.")))
    response = await agent.client.post(
        COMPLETIONS,
        json=user_says("What is the capital of France?"),
        headers=agent.user.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "mai-assistant"
    [choice] = body["choices"]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Paris is the capital of France.",
        "refusal": None,
    }
    assert choice["finish_reason"] == "stop"
    assert body["mai"]["status"] == "completed"
    assert body["mai"]["session_id"] is None
    assert body["mai"]["temporary"] is True
    assert "X-Session-ID" not in response.headers

    # The run was the engine's: its usage event names it, with the tokens it answered.
    event = await usage_event_of(agent, body["id"])
    assert str(event.conversation_id) == body["mai"]["conversation_id"]
    assert event.status == "completed"
    assert body["usage"] == {
        "prompt_tokens": event.input_tokens,
        "completion_tokens": event.output_tokens,
        "total_tokens": event.input_tokens + event.output_tokens,
    }
    assert body["usage"]["prompt_tokens"] > 0
    # Without a session the thread was temporary: no conversation is left for the caller.
    await assert_no_conversation(agent, body["mai"]["conversation_id"])


async def test_stateless_request_is_the_whole_conversation(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Your name is Ada.")))
    response = await agent.client.post(
        COMPLETIONS,
        json={
            "model": "assistant",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "My name is Ada."},
                {"role": "assistant", "content": "Nice to meet you, Ada."},
                {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
            ],
        },
        headers=agent.user.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Your name is Ada."
    answering = " ".join(str(m.content) for m in agent.model.calls[-1])
    assert "My name is Ada." in answering
    assert "Nice to meet you, Ada." in answering
    assert "What is my name?" in answering
    await assert_no_conversation(agent, response.json()["mai"]["conversation_id"])


async def test_a_stateless_stream_leaves_no_conversation(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Streamed and gone.")))
    response = await agent.client.post(
        COMPLETIONS,
        json=user_says("Stream it", stream=True, stream_options={"include_usage": True}),
        headers=agent.user.headers,
    )
    assert response.status_code == 200, response.text
    chunks, done = chunks_of(response.text)
    assert done
    final = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]][-1]
    assert final["mai"]["temporary"] is True
    event = await usage_event_of(agent, chunks[0]["id"])
    assert chunks[-1]["usage"]["completion_tokens"] == event.output_tokens
    assert event.streamed is True
    await assert_no_conversation(agent, final["mai"]["conversation_id"])


async def test_user_goes_with_the_run(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Hello, end user.")))
    response = await agent.client.post(
        COMPLETIONS,
        json=user_says("Hi", user="end-user-7"),
        headers={**agent.user.headers, "X-Session-ID": "attributed"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mai"]["user"] == "end-user-7"
    async with agent.resources.sessionmaker() as session:
        run = await session.get(AgentRun, uuid.UUID(body["id"]))
        assert run is not None
        assert run.config["metadata"]["end_user"] == "end-user-7"
        assert run.context["llm_params"]["user"] == "end-user-7"
    event = await usage_event_of(agent, body["id"])
    assert event.details == {"end_user": "end-user-7"}
    # Without `user`, nothing is attributed.
    plain = scripted(*direct("Hello."))
    agent.model.respond = lambda messages: plain._next(messages)
    anonymous = await agent.client.post(
        COMPLETIONS, json=user_says("Hi"), headers={**agent.user.headers, "X-Session-ID": "plain"}
    )
    assert anonymous.json()["mai"]["user"] is None
    assert (await usage_event_of(agent, anonymous.json()["id"])).details == {}


async def test_session_continues_one_conversation(start_agent: StartAgent) -> None:
    agent = await start_agent(
        scripted(*direct("Noted, your name is Ada."), *direct("Your name is Ada."))
    )
    headers = {**agent.user.headers, "X-Session-ID": "chat-42"}
    first = await agent.client.post(COMPLETIONS, json=user_says("My name is Ada."), headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["X-Session-ID"] == "chat-42"
    # Clients resend the whole history; with a session only the last message is new.
    second = await agent.client.post(
        COMPLETIONS,
        json={
            "model": "mai-assistant",
            "messages": [
                {"role": "user", "content": "My name is Ada."},
                {"role": "assistant", "content": "Noted, your name is Ada."},
                {"role": "user", "content": "What is my name?"},
            ],
        },
        headers=headers,
    )
    assert second.status_code == 200, second.text
    conversation_id = first.json()["mai"]["conversation_id"]
    assert second.json()["mai"]["conversation_id"] == conversation_id
    assert second.json()["mai"]["session_id"] == "chat-42"
    answering = " ".join(str(m.content) for m in agent.model.calls[-1])
    assert "Noted, your name is Ada." in answering  # the first turn, from the checkpoint

    detail = (
        await agent.client.get(f"{CONVERSATIONS}/{conversation_id}", headers=agent.user.headers)
    ).json()
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [
        ("user", "My name is Ada."),
        ("assistant", "Noted, your name is Ada."),
        ("user", "What is my name?"),
        ("assistant", "Your name is Ada."),
    ]
    assert detail["title"] == "My name is Ada."
    # The conversation shows what its turns used, once their usage events are recorded.
    for turn in (first, second):
        await usage_event_of(agent, turn.json()["id"])
    used = {
        key: first.json()["usage"][key] + second.json()["usage"][key]
        for key in ("prompt_tokens", "completion_tokens")
    }
    listed = (await agent.client.get(CONVERSATIONS, headers=agent.user.headers)).json()
    [item] = [c for c in listed["items"] if c["id"] == conversation_id]
    detail = (
        await agent.client.get(f"{CONVERSATIONS}/{conversation_id}", headers=agent.user.headers)
    ).json()
    for shown in (item["usage"], detail["usage"]):
        assert (shown["input_tokens"], shown["output_tokens"]) == (
            used["prompt_tokens"],
            used["completion_tokens"],
        )

    # metadata.conversation_id names the same session; a conversation id continues it too.
    third_model = scripted(*direct("Still Ada."))
    agent.model.respond = lambda messages: third_model._next(messages)
    by_metadata = await agent.client.post(
        COMPLETIONS,
        json=user_says("And now?", metadata={"conversation_id": conversation_id}),
        headers=agent.user.headers,
    )
    assert by_metadata.status_code == 200, by_metadata.text
    assert by_metadata.json()["mai"]["conversation_id"] == conversation_id


async def test_sessions_belong_to_their_user(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("One."), *direct("Two.")))
    other = await register(agent.client)
    mine = await agent.client.post(
        COMPLETIONS,
        json=user_says("Hello"),
        headers={**agent.user.headers, "X-Session-ID": "shared-name"},
    )
    assert mine.status_code == 200, mine.text
    # The same session name from another user is another conversation.
    theirs = await agent.client.post(
        COMPLETIONS,
        json=user_says("Hello"),
        headers={**other.headers, "X-Session-ID": "shared-name"},
    )
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["mai"]["conversation_id"] != mine.json()["mai"]["conversation_id"]
    # Another user's conversation id is not found.
    stolen = await agent.client.post(
        COMPLETIONS,
        json=user_says("Hello"),
        headers={**other.headers, "X-Session-ID": mine.json()["mai"]["conversation_id"]},
    )
    assert_openai_error(stolen, 404, "conversation_not_found")


async def test_streamed_completion_sends_openai_chunks(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Paris is the capital of France.")))
    async with agent.client.stream(
        "POST",
        COMPLETIONS,
        json=user_says(
            "What is the capital of France?", stream=True, stream_options={"include_usage": True}
        ),
        headers={**agent.user.headers, "X-Session-ID": "streamed"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["X-Session-ID"] == "streamed"
        chunks, done = chunks_of((await response.aread()).decode())
    assert done
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Paris is the capital of France."
    # More than the role chunk and the finish: the tokens came as they were made.
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 1
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finish] == ["stop"]
    assert finish[0]["mai"]["status"] == "completed"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    async with agent.resources.sessionmaker() as session:
        run = await session.get(AgentRun, uuid.UUID(chunks[0]["id"]))
        assert run is not None
        assert run.streamed is True
        assert usage_chunk["usage"]["prompt_tokens"] == run.usage["input_tokens"]
        assert usage_chunk["usage"]["completion_tokens"] == run.usage["output_tokens"]
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_streamed_completion_without_usage_has_no_usage_chunk(
    start_agent: StartAgent,
) -> None:
    agent = await start_agent(scripted(*direct("Hi there.")))
    response = await agent.client.post(
        COMPLETIONS, json=user_says("Hi", stream=True), headers=agent.user.headers
    )
    chunks, done = chunks_of(response.text)
    assert done
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_the_agents_own_tools_run_on_the_server(start_agent: StartAgent) -> None:
    agent = await start_agent(
        scripted(
            {"route": "tools"},
            ask_tools(tool_call("calculator", {"expression": "6*7"})),
            "It is 42.",
        )
    )
    response = await agent.client.post(
        COMPLETIONS, json=user_says("What is 6*7?"), headers=agent.user.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "It is 42."
    [call] = body["mai"]["tool_calls"]
    assert call["name"] == "calculator"
    assert "42" in str(call["result"])


async def test_a_pause_for_approval_says_what_to_decide_and_where(
    start_agent: StartAgent,
) -> None:
    agent = await start_agent(
        scripted(
            {"route": "tools"},
            ask_tools(tool_call("send_email", EMAIL), content="Mailing Ada."),
            "I sent the minutes to Ada.",
            *direct("You are welcome."),
        ),
        approval_sweep_seconds=3600,
    )
    headers = {**agent.user.headers, "X-Session-ID": "approvals"}
    response = await agent.client.post(
        COMPLETIONS, json=user_says("Mail the minutes to Ada"), headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["finish_reason"] == "stop"
    [approval] = body["mai"]["approvals"]
    assert body["mai"]["status"] == "awaiting_approval"
    content = body["choices"][0]["message"]["content"]
    assert approval["id"] in content
    assert "send_email" in content
    assert f"http://testserver/api/v1/approvals/{approval['id']}/approve" in content

    waiting = await agent.client.post(COMPLETIONS, json=user_says("Thanks"), headers=headers)
    assert approval["id"] in assert_openai_error(waiting, 409, "approval_pending")["message"]

    decided = await agent.client.post(
        f"/api/v1/approvals/{approval['id']}/approve", json={}, headers=agent.user.headers
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["answer"] == "I sent the minutes to Ada."
    # The client saw only the notice: the next turn in the session gives the answer first.
    after = await agent.client.post(COMPLETIONS, json=user_says("Thanks"), headers=headers)
    assert after.status_code == 200, after.text
    assert after.json()["choices"][0]["message"]["content"] == (
        "After your approval: I sent the minutes to Ada.\n\nYou are welcome."
    )
    # Once only.
    bye = scripted(*direct("Bye."))
    agent.model.respond = lambda messages: bye._next(messages)
    later = await agent.client.post(COMPLETIONS, json=user_says("Bye"), headers=headers)
    assert later.json()["choices"][0]["message"]["content"] == "Bye."


async def test_a_stateless_pause_keeps_its_thread_as_the_session(start_agent: StartAgent) -> None:
    agent = await start_agent(
        scripted(
            {"route": "tools"},
            ask_tools(tool_call("send_email", EMAIL), content="Mailing Ada."),
            "I sent the minutes to Ada.",
            *direct("You are welcome."),
        ),
        approval_sweep_seconds=3600,
    )
    response = await agent.client.post(
        COMPLETIONS, json=user_says("Mail the minutes to Ada"), headers=agent.user.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["finish_reason"] == "stop"
    [approval] = body["mai"]["approvals"]
    conversation_id = body["mai"]["conversation_id"]
    # The approval needs the thread: it is kept, and named as the session to go on with.
    assert body["mai"]["temporary"] is False
    assert body["mai"]["session_id"] == conversation_id
    assert f"X-Session-ID: {conversation_id}" in body["choices"][0]["message"]["content"]
    kept = await agent.client.get(f"{CONVERSATIONS}/{conversation_id}", headers=agent.user.headers)
    assert kept.status_code == 200, kept.text

    decided = await agent.client.post(
        f"/api/v1/approvals/{approval['id']}/approve", json={}, headers=agent.user.headers
    )
    assert decided.status_code == 200, decided.text
    after = await agent.client.post(
        COMPLETIONS,
        json=user_says("Thanks"),
        headers={**agent.user.headers, "X-Session-ID": conversation_id},
    )
    assert after.status_code == 200, after.text
    assert after.json()["choices"][0]["message"]["content"] == (
        "After your approval: I sent the minutes to Ada.\n\nYou are welcome."
    )
    assert after.json()["mai"]["conversation_id"] == conversation_id


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (user_says("hi", model="gpt-4o"), 404, "model_not_found", "model"),
        ({"model": "mai-assistant", "messages": []}, 400, "empty_messages", "messages"),
        (
            {
                "model": "mai-assistant",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                ],
            },
            400,
            "last_message_not_user",
            "messages",
        ),
        (
            user_says("hi", tools=[{"type": "function", "function": {"name": "f"}}]),
            400,
            "tools_not_supported",
            "tools",
        ),
        (user_says("hi", tool_choice="required"), 400, "tools_not_supported", "tool_choice"),
        (user_says("hi", n=2), 400, "unsupported_n", "n"),
        (
            {
                "model": "mai-assistant",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "tool", "content": "42", "tool_call_id": "x"},
                    {"role": "user", "content": "and?"},
                ],
            },
            400,
            "unsupported_role",
            "messages.1.role",
        ),
        (
            {
                "model": "mai-assistant",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            },
            400,
            "unsupported_content",
            "messages.0.content",
        ),
        (user_says("hi", temperature=5), 422, "validation_error", "temperature"),
        ({"messages": [{"role": "user", "content": "hi"}]}, 422, "validation_error", "model"),
    ],
)
async def test_bad_requests_get_openai_errors(
    start_agent: StartAgent, body: dict[str, Any], status: int, code: str, param: str
) -> None:
    agent = await start_agent(scripted())
    response = await agent.client.post(COMPLETIONS, json=body, headers=agent.user.headers)
    assert assert_openai_error(response, status, code)["param"] == param
    assert agent.model.calls == []  # nothing ran


async def test_oversized_and_malformed_bodies(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(), openai_max_body_bytes=100_000)
    huge = await agent.client.post(
        COMPLETIONS, json=user_says("x" * 200_000), headers=agent.user.headers
    )
    assert assert_openai_error(huge, 413, "payload_too_large")["param"] == "messages"
    broken = await agent.client.post(
        COMPLETIONS,
        content=b"{not json",
        headers={**agent.user.headers, "Content-Type": "application/json"},
    )
    assert_openai_error(broken, 400, "invalid_json")
    anonymous = await agent.client.post(COMPLETIONS, json=user_says("hi"))
    assert_openai_error(anonymous, 401, "unauthorized")
    nul = await agent.client.post(
        COMPLETIONS, json=user_says("a\u0000b"), headers=agent.user.headers
    )
    assert_openai_error(nul, 400, "nul_character")


async def test_a_ten_megabyte_body_is_413_by_default(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted())
    huge = await agent.client.post(
        COMPLETIONS, json=user_says("x" * 10_000_000), headers=agent.user.headers
    )
    # Refused before any route runs (over MAI_MAX_BODY_BYTES), in OpenAI's shape all the same.
    assert_openai_error(huge, 413, "payload_too_large")
    assert agent.model.calls == []


async def test_a_busy_session_is_a_conflict(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*direct("Done.")))
    headers = {**agent.user.headers, "X-Session-ID": "busy"}
    first = await agent.client.post(COMPLETIONS, json=user_says("one"), headers=headers)
    assert first.status_code == 200
    conversation_id = uuid.UUID(first.json()["mai"]["conversation_id"])
    # Hold the session's thread as a running turn would.
    from app.repositories.runs import RunRepository

    async with agent.resources.sessionmaker() as session:
        assert await RunRepository(session).lock_thread(
            conversation_id, uuid.uuid4(), agent.resources.clock.now()
        )
        await session.commit()
    busy = await agent.client.post(COMPLETIONS, json=user_says("two"), headers=headers)
    assert_openai_error(busy, 409, "thread_busy")


async def test_usage_events_and_budgets_count_completions(start_agent: StartAgent) -> None:
    from sqlalchemy import select

    from app.models import UsageEvent

    agent = await start_agent(scripted(*direct("A fairly long answer to spend tokens.")))
    response = await agent.client.post(
        COMPLETIONS, json=user_says("Spend some tokens"), headers=agent.user.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    async with agent.resources.sessionmaker() as session:
        events = (
            (await session.execute(select(UsageEvent).where(UsageEvent.run_id == body["id"])))
            .scalars()
            .all()
        )
    [event] = [e for e in events if e.kind == "turn"] or events
    assert event.input_tokens == body["usage"]["prompt_tokens"]
    assert event.output_tokens == body["usage"]["completion_tokens"]
    assert str(event.conversation_id) == body["mai"]["conversation_id"]

    # A budget the first completion used up refuses the next with OpenAI's 429.
    from app.models import User

    async with agent.resources.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(agent.user.id))
        assert user is not None
        user.daily_token_budget = 1
        await session.commit()
    refused = await agent.client.post(
        COMPLETIONS, json=user_says("More"), headers=agent.user.headers
    )
    error = assert_openai_error(refused, 429, "token_budget_exceeded")
    assert error["type"] == "rate_limit_error"
    assert "Retry-After" in refused.headers


async def test_an_unreachable_llm_is_503_in_openai_shape(
    app_factory: Any, settings_factory: Any
) -> None:
    from tests.conftest import client_for

    settings = settings_factory(llm_model="some-model", llm_max_retries=0, llm_timeout_seconds=5)
    app = await app_factory(settings)  # a ChatOpenAI against a closed port
    async with client_for(app) as client:
        account = await register(client)
        response = await client.post(COMPLETIONS, json=user_says("hello"), headers=account.headers)
        error = assert_openai_error(response, 503, "llm_unavailable")
        assert error["type"] == "service_unavailable_error"
        # Streamed, the failure comes once the stream has begun: as an error object in it,
        # which OpenAI's SDKs raise.
        stream = await client.post(
            COMPLETIONS, json=user_says("hello", stream=True), headers=account.headers
        )
        assert stream.status_code == 200
        chunks, done = chunks_of(stream.text)
        assert not done
        assert chunks[-1]["error"]["code"] == "llm_unavailable"
        assert chunks[-1]["error"]["type"] == "service_unavailable_error"


async def test_knowledge_answers_end_with_their_sources(
    app_factory: Any, settings_factory: Any
) -> None:
    from tests.conftest import client_for
    from tests.kb.support import HashEmbedder, ingest

    model = scripted(
        {"route": "knowledge"},
        ask_tools(tool_call("kb_search", {"query": "ERR-4471 amber light"})),
        "An amber light with ERR-4471 means the fan failed [1].",
    )
    app = await app_factory(settings_factory(), embedder=HashEmbedder(), chat_model=model)
    async with client_for(app) as client:
        account = await register(client)
        guide = await ingest(
            client,
            account.headers,
            "guide.txt",
            b"A blinking amber light means error ERR-4471: fan failure.",
            title="Router guide",
        )
        response = await client.post(
            COMPLETIONS,
            json=user_says("What does the amber light with ERR-4471 mean?"),
            headers=account.headers,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["content"] == (
        "An amber light with ERR-4471 means the fan failed [1].\n\nSources:\n[1] Router guide"
    )
    [citation] = body["mai"]["citations"]
    assert citation["number"] == 1
    assert citation["document_id"] == guide["id"]


async def test_a_streamed_pause_for_approval_ends_with_the_notice(start_agent: StartAgent) -> None:
    agent = await start_agent(
        scripted(
            {"route": "tools"},
            ask_tools(tool_call("send_email", EMAIL), content="Mailing Ada."),
        ),
        approval_sweep_seconds=3600,
    )
    response = await agent.client.post(
        COMPLETIONS,
        json=user_says("Mail the minutes to Ada", stream=True),
        headers={**agent.user.headers, "X-Session-ID": "streamed-approval"},
    )
    assert response.status_code == 200, response.text
    chunks, done = chunks_of(response.text)
    assert done
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    [approval] = final["mai"]["approvals"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert f"/api/v1/approvals/{approval['id']}/approve" in text
    assert "send_email" in text
