"""Human approval through the API: pause, decide, resume, expire, restart, notify."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import ToolMessage

from app.core.clock import FrozenClock
from app.services.approvals import ApprovalService
from tests.api.agent_helpers import parse_sse, wait_idle
from tests.conftest import Account, AppFactory, SettingsFactory, client_for, register
from tests.conftest import Agent as SharedAgent
from tests.conftest import StartAgent as SharedStart
from tests.fake_llm import ScriptedChatModel, ask_tools, scripted, tool_call
from tests.graphs.http_server import LocalServer, Request, serve

pytestmark = pytest.mark.usefixtures("backend")

QUERY = "/api/v1/agent/query"
STREAM = "/api/v1/agent/stream"
CONVERSATIONS = "/api/v1/agent/conversations"
APPROVALS = "/api/v1/approvals"
EMAIL = {"to": "ada@example.com", "subject": "Minutes", "body": "Here are the minutes."}
WHY = "You asked me to mail the minutes to Ada."


class Agent(SharedAgent):
    """The shared agent harness with approval helpers."""

    async def ask(self, message: str = "Mail the minutes to Ada", **body: Any) -> httpx.Response:
        """POST /agent/query as the user (by default asking for the email)."""
        return await super().ask(message, **body)

    async def decide(
        self, approval_id: str, action: str, body: Any = None, who: Account | None = None
    ) -> httpx.Response:
        """POST /approvals/{id}/{action}."""
        return await self.client.post(
            f"{APPROVALS}/{approval_id}/{action}",
            json=body,
            headers=(who or self.user).headers,
        )

    async def outbox(self) -> list[dict[str, Any]]:
        """The email outbox, read as an admin would (through the service's tables)."""
        from sqlalchemy import select

        from app.models import OutboxEmail

        async with self.resources.sessionmaker() as session:
            rows = (await session.execute(select(OutboxEmail))).scalars().all()
            return [{"to": r.to, "subject": r.subject, "body": r.body} for r in rows]


@pytest.fixture
def start_agent(start_agent: SharedStart) -> SharedStart:
    """The shared starter, with approval helpers and no background sweep during a test."""

    async def start(
        model: ScriptedChatModel, user: Account | None = None, **overrides: Any
    ) -> Agent:
        overrides.setdefault("approval_sweep_seconds", 3600)
        agent: Agent = await start_agent(model, user, agent_class=Agent, **overrides)
        return agent

    return start


StartAgent = SharedStart


def email_turn(*calls: dict[str, Any]) -> list[Any]:
    """The replies of a turn whose model asks to send email(s)."""
    return [
        {"route": "tools"},
        ask_tools(*(calls or (tool_call("send_email", EMAIL),)), content=WHY),
    ]


async def paused(agent: Agent) -> dict[str, Any]:
    """Ask for the email and return the paused turn."""
    response = await agent.ask()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "awaiting_approval", body
    return dict(body)


async def test_approve_runs_the_tool_and_finishes_the_turn(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*email_turn(), "I sent the minutes to Ada."))
    body = await paused(agent)
    assert body["answer"] == ""
    assert body["message_id"] is None
    [approval] = body["approvals"]
    assert approval["status"] == "pending"
    assert approval["tool"] == "send_email"
    assert approval["args"] == EMAIL
    assert approval["reason"] == WHY
    assert approval["conversation_id"] == body["conversation_id"]
    assert approval["run_id"] == body["run_id"]
    assert await agent.outbox() == []  # nothing sent before the approval

    listed = (
        await agent.client.get(f"{APPROVALS}?status=pending", headers=agent.user.headers)
    ).json()
    assert [a["id"] for a in listed["items"]] == [approval["id"]]
    assert listed["total"] == 1

    done = await agent.decide(approval["id"], "approve", {"reason": "fine"})
    assert done.status_code == 200, done.text
    turn = done.json()
    assert turn["status"] == "completed"
    assert turn["answer"] == "I sent the minutes to Ada."
    assert turn["run_id"] == body["run_id"]
    assert [c["status"] for c in turn["tool_calls"]] == ["ok"]
    assert await agent.outbox() == [EMAIL]

    detail = (
        await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=agent.user.headers)
    ).json()
    assert detail["status"] == "approved"
    assert detail["decided_by"] == agent.user.id
    assert detail["decision_reason"] == "fine"
    assert [h["kind"] for h in detail["history"]] == ["requested", "approved", "resumed"]
    assert detail["history"][1]["actor_id"] == agent.user.id

    conversation = await wait_idle(agent.client, agent.user.headers, body["conversation_id"])
    assert [(m["role"], m["content"]) for m in conversation["messages"]] == [
        ("user", "Mail the minutes to Ada"),
        ("assistant", "I sent the minutes to Ada."),
    ]


async def test_reject_tells_the_model_and_sends_nothing(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*email_turn(), "I did not send it: you said no."))
    [approval] = (await paused(agent))["approvals"]
    done = await agent.decide(approval["id"], "reject", {"reason": "wrong recipient"})
    assert done.status_code == 200, done.text
    turn = done.json()
    assert turn["status"] == "completed"
    assert turn["tool_calls"][0]["status"] == "rejected"
    assert "wrong recipient" in turn["tool_calls"][0]["result"]
    told = [m for m in agent.model.calls[-1] if isinstance(m, ToolMessage)]
    assert "wrong recipient" in str(told[-1].content)
    assert await agent.outbox() == []


async def test_modify_runs_with_edited_args_and_rejects_invalid_ones(
    start_agent: StartAgent,
) -> None:
    agent = await start_agent(scripted(*email_turn(), "Sent to Grace instead."))
    [approval] = (await paused(agent))["approvals"]

    invalid = await agent.decide(
        approval["id"], "modify", {"args": {**EMAIL, "to": "not-an-address"}}
    )
    assert invalid.status_code == 422, invalid.text
    error = invalid.json()
    assert error["error"] == "invalid_tool_args"
    assert "to" in error["detail"]
    assert error["meta"]["errors"][0]["field"] == "to"
    missing = await agent.decide(approval["id"], "modify", {"args": {"to": "grace@example.com"}})
    assert missing.status_code == 422
    assert "subject" in missing.json()["detail"]
    injected = await agent.decide(
        approval["id"], "modify", {"args": {**EMAIL, "subject": "hi\r\nBcc: eve@example.com"}}
    )
    assert injected.status_code == 422
    assert "subject" in injected.json()["detail"]
    still = (
        await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=agent.user.headers)
    ).json()
    assert still["status"] == "pending"

    edited = {**EMAIL, "to": "grace@example.com"}
    done = await agent.decide(approval["id"], "modify", {"args": edited})
    assert done.status_code == 200, done.text
    assert done.json()["tool_calls"][0]["args"] == edited
    assert await agent.outbox() == [edited]
    detail = (
        await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=agent.user.headers)
    ).json()
    assert detail["status"] == "approved"
    assert detail["args"] == EMAIL
    assert detail["edited_args"] == edited
    assert [h["kind"] for h in detail["history"]][:2] == ["requested", "modified"]


async def test_expiry_through_the_sweeper(start_agent: StartAgent, clock: FrozenClock) -> None:
    agent = await start_agent(
        scripted(*email_turn(), "Your approval request expired, so I sent nothing."),
        approval_timeout_seconds=600,
    )
    body = await paused(agent)
    [approval] = body["approvals"]
    service = ApprovalService(agent.resources)
    assert await service.sweep() == 0  # not due yet
    clock.advance(601)
    assert await service.sweep() == 1

    conversation = await wait_idle(agent.client, agent.user.headers, body["conversation_id"])
    assert conversation["messages"][-1]["content"].startswith("Your approval request expired")
    assert conversation["messages"][-1]["tool_calls"][0]["status"] == "rejected"
    told = [m for m in agent.model.calls[-1] if isinstance(m, ToolMessage)]
    assert "expired" in str(told[-1].content)
    detail = (
        await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=agent.user.headers)
    ).json()
    assert detail["status"] == "expired"
    assert detail["decision_reason"] == "expired"
    assert [h["kind"] for h in detail["history"]] == ["requested", "expired", "resumed"]
    late = await agent.decide(approval["id"], "approve")
    assert late.status_code == 409
    assert late.json()["error"] == "approval_expired"
    assert await agent.outbox() == []


async def test_deciding_after_the_deadline_is_409_and_expires_it(
    start_agent: StartAgent, clock: FrozenClock
) -> None:
    agent = await start_agent(scripted(*email_turn(), "It expired."), approval_timeout_seconds=60)
    body = await paused(agent)
    clock.advance(61)
    late = await agent.decide(body["approvals"][0]["id"], "approve")
    assert late.status_code == 409
    assert late.json()["error"] == "approval_expired"
    conversation = await wait_idle(agent.client, agent.user.headers, body["conversation_id"])
    assert conversation["messages"][-1]["content"] == "It expired."
    assert await agent.outbox() == []


async def test_two_approvals_in_one_turn(start_agent: StartAgent) -> None:
    second = {**EMAIL, "to": "grace@example.com"}
    agent = await start_agent(
        scripted(
            *email_turn(tool_call("send_email", EMAIL), tool_call("send_email", second)),
            "Sent one, the other was refused.",
        )
    )
    body = await paused(agent)
    first_id, second_id = (a["id"] for a in body["approvals"])
    assert first_id != second_id

    partial = await agent.decide(first_id, "approve")
    assert partial.status_code == 200, partial.text
    waiting = partial.json()
    assert waiting["status"] == "awaiting_approval"
    assert [a["id"] for a in waiting["approvals"]] == [second_id]
    assert await agent.outbox() == []  # nothing runs until every approval is decided

    done = await agent.decide(second_id, "reject", {"reason": "duplicate"})
    assert done.status_code == 200, done.text
    turn = done.json()
    assert turn["status"] == "completed"
    assert [c["status"] for c in turn["tool_calls"]] == ["ok", "rejected"]
    assert await agent.outbox() == [EMAIL]


async def test_decision_after_a_restart(start_agent: StartAgent, app_factory: AppFactory) -> None:
    first = await start_agent(scripted(*email_turn(), "Sent after approval."))
    body = await paused(first)
    await first.client.aclose()
    await app_factory.stop(first.app)

    second = await start_agent(scripted("Sent after the restart."), user=first.user)
    pending = (await second.client.get(APPROVALS, headers=first.user.headers)).json()
    assert [a["id"] for a in pending["items"]] == [body["approvals"][0]["id"]]
    done = await second.decide(body["approvals"][0]["id"], "approve")
    assert done.status_code == 200, done.text
    assert done.json()["answer"] == "Sent after the restart."
    assert await second.outbox() == [EMAIL]


async def test_double_decision_is_409(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*email_turn(), "Sent."))
    [approval] = (await paused(agent))["approvals"]
    assert (await agent.decide(approval["id"], "approve")).status_code == 200
    for action, body in (("approve", None), ("reject", {"reason": "x"}), ("modify", {"args": {}})):
        again = await agent.decide(approval["id"], action, body)
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "approval_already_decided"
        assert again.json()["meta"]["status"] == "approved"
    assert await agent.outbox() == [EMAIL]


async def test_concurrent_decisions_have_one_winner(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*email_turn(), "Sent."))
    [approval] = (await paused(agent))["approvals"]
    answers = await asyncio.gather(
        agent.decide(approval["id"], "approve"),
        agent.decide(approval["id"], "reject", {"reason": "no"}),
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    await asyncio.sleep(0)
    assert len(await agent.outbox()) in (0, 1)


async def test_unknown_and_foreign_approvals_are_404(
    start_agent: StartAgent, app_factory: AppFactory
) -> None:
    agent = await start_agent(scripted(*email_turn(), "Sent."))
    [approval] = (await paused(agent))["approvals"]
    unknown = str(uuid.uuid4())
    assert (await agent.decide(unknown, "approve")).status_code == 404
    response = await agent.client.get(f"{APPROVALS}/{unknown}", headers=agent.user.headers)
    assert response.status_code == 404
    assert response.json()["error"] == "approval_not_found"

    other = await register(agent.client)
    assert (await agent.decide(approval["id"], "approve", who=other)).status_code == 404
    read = await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=other.headers)
    assert read.status_code == 404
    theirs = (await agent.client.get(APPROVALS, headers=other.headers)).json()
    assert theirs["total"] == 0
    assert (await agent.client.get(f"{APPROVALS}/outbox", headers=other.headers)).status_code == 403
    assert await agent.outbox() == []


async def test_admin_sees_and_decides_everyones_approvals(
    start_agent: StartAgent,
) -> None:
    agent = await start_agent(scripted(*email_turn(), "Sent."))
    [approval] = (await paused(agent))["approvals"]
    admin = await register(agent.client)
    from app.models import Role, User

    async with agent.resources.sessionmaker() as session:
        row = await session.get(User, uuid.UUID(admin.id))
        assert row is not None
        row.role = Role.admin.value
        await session.commit()
    listed = (await agent.client.get(APPROVALS, headers=admin.headers)).json()
    assert [a["id"] for a in listed["items"]] == [approval["id"]]
    done = await agent.decide(approval["id"], "approve", who=admin)
    assert done.status_code == 200, done.text
    outbox = (await agent.client.get(f"{APPROVALS}/outbox", headers=admin.headers)).json()
    assert [(e["to"], e["subject"]) for e in outbox["items"]] == [("ada@example.com", "Minutes")]
    assert outbox["items"][0]["user_id"] == agent.user.id
    detail = (await agent.client.get(f"{APPROVALS}/{approval['id']}", headers=admin.headers)).json()
    assert detail["decided_by"] == admin.id


async def test_stream_sends_the_interrupt_and_ends(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*email_turn(), "Sent."))
    response = await agent.client.post(
        STREAM, json={"message": "Mail the minutes"}, headers=agent.user.headers
    )
    assert response.status_code == 200
    events, _ = parse_sse(response.text)
    names = [e.event for e in events]
    assert names[0] == "metadata"
    assert names[-2:] == ["updates", "end"]
    assert "values" not in names
    assert "error" not in names
    interrupt = events[-2].data["__interrupt__"]
    [request] = interrupt[0]["value"]["approvals"]
    assert request["tool"] == "send_email"
    assert interrupt[0]["id"]

    streamed = await agent.client.post(
        f"{APPROVALS}/{request['approval_id']}/approve?stream=true", headers=agent.user.headers
    )
    assert streamed.status_code == 200
    events, _ = parse_sse(streamed.text)
    names = [e.event for e in events]
    assert names[0] == "metadata"
    assert names[-2:] == ["values", "end"]
    assert events[-2].data["answer"] == "Sent."
    assert "messages" in names


async def test_message_while_waiting_is_409_naming_the_approvals(
    start_agent: StartAgent,
) -> None:
    agent = await start_agent(scripted(*email_turn(), "Sent.", {"route": "direct"}, "Hi again."))
    body = await paused(agent)
    busy = await agent.ask("Are you there?", conversation_id=body["conversation_id"])
    assert busy.status_code == 409, busy.text
    error = busy.json()
    assert error["error"] == "approval_pending"
    assert error["meta"]["approval_ids"] == [body["approvals"][0]["id"]]
    stream = await agent.client.post(
        STREAM,
        json={"message": "hello?", "conversation_id": body["conversation_id"]},
        headers=agent.user.headers,
    )
    assert stream.status_code == 409
    assert (await agent.decide(body["approvals"][0]["id"], "approve")).status_code == 200
    after = await agent.ask("Are you there?", conversation_id=body["conversation_id"])
    assert after.status_code == 200, after.text
    assert after.json()["answer"] == "Hi again."


def _webhook_handler(secret: str, fail_first: int) -> tuple[Callable[[Request], Any], list[Any]]:
    seen: list[Any] = []
    calls = {"n": 0}

    def handle(request: Request) -> Any:
        calls["n"] += 1
        if calls["n"] <= fail_first:
            return 503, {"error": "busy"}, {}
        expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-mai-signature", "")):
            return 401, {"error": "bad signature"}, {}
        seen.append(json.loads(request.body))
        return 204, b"", {}

    return handle, seen


@pytest.mark.parametrize("fail_first", [0, 2])
async def test_webhook_is_signed_and_retried(start_agent: StartAgent, fail_first: int) -> None:
    secret = "webhook-secret-1"
    with serve() as server:
        server_: LocalServer = server
        handle, seen = _webhook_handler(secret, fail_first)
        server_.route("POST", "/hook", handle)
        agent = await start_agent(
            scripted(*email_turn(), "Sent."),
            approval_webhook_url=f"{server_.url}/hook",
            approval_webhook_secret=secret,
            approval_webhook_backoff_seconds=0.01,
        )
        [approval] = (await paused(agent))["approvals"]
        assert (await agent.decide(approval["id"], "approve")).status_code == 200
        webhook = agent.resources.approval_webhook
        assert webhook is not None
        await webhook.drain(timeout=10)
    # Retries may reorder deliveries; each carries the approval's state when it was sent.
    assert sorted((e["event"], e["approval"]["id"], e["approval"]["status"]) for e in seen) == [
        ("approval.decided", approval["id"], "approved"),
        ("approval.requested", approval["id"], "pending"),
    ]
    assert len(server_.requests) == 2 + fail_first
    assert {r.headers["x-mai-event"] for r in server_.requests} == {
        "approval.requested",
        "approval.decided",
    }


async def test_failing_webhook_never_blocks_the_run(start_agent: StartAgent) -> None:
    agent = await start_agent(
        scripted(*email_turn(), "Sent."),
        approval_webhook_url="http://127.0.0.1:9/hook",
        approval_webhook_secret="s",
        approval_webhook_backoff_seconds=0.01,
        approval_webhook_max_attempts=3,
    )
    [approval] = (await paused(agent))["approvals"]
    done = await agent.decide(approval["id"], "approve")
    assert done.status_code == 200
    assert done.json()["answer"] == "Sent."


class _Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = envelope.content.decode() if isinstance(envelope.content, bytes) else ""
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), content))
        return "250 OK"


async def test_send_email_goes_through_smtp_when_configured(start_agent: StartAgent) -> None:
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        agent = await start_agent(
            scripted(*email_turn(), "Sent by mail."),
            smtp_url=f"smtp://127.0.0.1:{port}",
            smtp_from="assistant@example.com",
        )
        [approval] = (await paused(agent))["approvals"]
        assert inbox.messages == []
        done = await agent.decide(approval["id"], "approve")
        assert done.status_code == 200, done.text
        assert done.json()["tool_calls"][0]["status"] == "ok"
    finally:
        controller.stop()
    [(sender, recipients, content)] = inbox.messages
    assert sender == "assistant@example.com"
    assert recipients == ["ada@example.com"]
    assert "Subject: Minutes" in content
    assert "Here are the minutes." in content
    assert await agent.outbox() == []


class _SSEReader:
    """Reads events from a live SSE response, one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 10) -> tuple[str, Any]:
        async def read() -> tuple[str, Any]:
            name, data = "message", []
            async for line in self.lines:
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    return name, json.loads("\n".join(data))
            raise AssertionError("the stream ended")

        return await asyncio.wait_for(read(), timeout)


async def test_events_stream_notifies_the_owner_live(start_agent: StartAgent) -> None:
    import uvicorn

    agent = await start_agent(scripted(*email_turn(), "Sent."))
    other = await register(agent.client)
    server = uvicorn.Server(
        uvicorn.Config(agent.app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}{APPROVALS}/events"
        async with (
            httpx.AsyncClient(timeout=30) as http,
            http.stream("GET", url, headers=agent.user.headers) as mine,
            http.stream("GET", url, headers=other.headers) as theirs,
        ):
            assert mine.status_code == 200
            assert mine.headers["content-type"].startswith("text/event-stream")
            reader, stranger = _SSEReader(mine), _SSEReader(theirs)
            assert (await reader.next())[0] == "ready"
            assert (await stranger.next())[0] == "ready"

            [approval] = (await paused(agent))["approvals"]
            name, data = await reader.next()
            assert (name, data["approval"]["id"], data["approval"]["status"]) == (
                "approval.requested",
                approval["id"],
                "pending",
            )
            assert (await agent.decide(approval["id"], "approve")).status_code == 200
            name, data = await reader.next()
            assert (name, data["approval"]["status"]) == ("approval.decided", "approved")
            with pytest.raises(TimeoutError):
                await stranger.next(timeout=0.3)  # another user's approvals are not theirs
    finally:
        server.should_exit = True
        await serving


async def test_another_process_decides_and_hears_about_it(
    start_agent: StartAgent, backend: str, tmp_path: Path
) -> None:
    first = await start_agent(scripted(*email_turn(), "Sent after approval."))
    settings = first.resources.settings
    # Its own data dir (Qdrant local mode locks one per process), the same databases.
    shared: dict[str, Any] = {
        "data_dir": tmp_path / "second",
        "jwt_secret": settings.jwt_signing_key,
    }
    if settings.sqlite_path is not None:
        shared["database_url"] = f"sqlite+aiosqlite:///{settings.sqlite_path}"
    # An API-only process: it records the decision, the first process's worker resumes the run.
    second = await start_agent(scripted(), user=first.user, run_workers_enabled=False, **shared)
    broker = second.resources.approval_events
    assert broker is not None
    async with broker.subscribe(lambda event: True) as heard:
        body = await paused(first)
        [approval] = body["approvals"]
        if backend == "postgres":
            # Redis relays events between processes.
            event = await asyncio.wait_for(heard.get(), timeout=10)
            assert (event["event"], event["approval"]["id"]) == (
                "approval.requested",
                approval["id"],
            )
        done = await second.decide(approval["id"], "approve")
        assert done.status_code == 200, done.text
        assert done.json()["answer"] == "Sent after approval."
    again = await first.decide(approval["id"], "reject")
    assert again.status_code == 409
    assert await first.outbox() == [EMAIL]


async def test_usage_is_recorded_once_across_the_pause(start_agent: StartAgent) -> None:
    from sqlalchemy import select

    from app.models import AgentRun, UsageEvent

    agent = await start_agent(scripted(*email_turn(), "Sent."))
    body = await paused(agent)
    done = await agent.decide(body["approvals"][0]["id"], "approve")
    assert done.status_code == 200
    await wait_idle(agent.client, agent.user.headers, body["conversation_id"])
    # The pause and the end of the resumed run are one turn: one event, completed.
    for _ in range(100):
        async with agent.resources.sessionmaker() as session:
            events = (
                (
                    await session.execute(
                        select(UsageEvent).where(UsageEvent.run_id == body["run_id"])
                    )
                )
                .scalars()
                .all()
            )
            run = await session.get(AgentRun, uuid.UUID(body["run_id"]))
        if [e.status for e in events] == ["completed"]:
            break
        await asyncio.sleep(0.02)
    [event] = events
    assert event.status == "completed"
    assert event.approval_wait_ms is not None
    assert event.approval_wait_ms >= 0
    assert run is not None
    assert run.status == "success"
    assert run.usage is not None
    assert event.input_tokens == run.usage["input_tokens"]
    assert event.output_tokens == run.usage["output_tokens"]
    assert run.usage == done.json()["usage"]


async def test_a_resumed_turn_can_pause_again(start_agent: StartAgent) -> None:
    second = {**EMAIL, "subject": "Follow-up"}
    agent = await start_agent(
        scripted(
            *email_turn(),
            ask_tools(tool_call("send_email", second), content="And a follow-up, as asked."),
            "Both emails were sent.",
        )
    )
    body = await paused(agent)
    again = await agent.decide(body["approvals"][0]["id"], "approve")
    assert again.status_code == 200, again.text
    waiting = again.json()
    assert waiting["status"] == "awaiting_approval"
    assert waiting["run_id"] == body["run_id"]
    [next_approval] = waiting["approvals"]
    assert next_approval["args"] == second
    assert next_approval["id"] != body["approvals"][0]["id"]
    assert await agent.outbox() == [EMAIL]
    done = await agent.decide(next_approval["id"], "approve")
    assert done.status_code == 200, done.text
    assert done.json()["answer"] == "Both emails were sent."
    assert [c["status"] for c in done.json()["tool_calls"]] == ["ok", "ok"]
    sent = await agent.outbox()
    assert sorted(e["subject"] for e in sent) == ["Follow-up", "Minutes"]


async def test_a_resume_the_model_cannot_start_is_retried_later(
    start_agent: StartAgent, app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    first = await start_agent(scripted(*email_turn(), "Sent after approval."))
    body = await paused(first)
    [approval] = body["approvals"]
    await first.client.aclose()
    await app_factory.stop(first.app)

    # A process whose LLM server is down: the decision is kept, the resume is postponed.
    down = await app_factory(settings_factory(approval_sweep_seconds=3600))
    async with client_for(down) as client:
        refused = await client.post(
            f"{APPROVALS}/{approval['id']}/approve", headers=first.user.headers
        )
        # The decision is recorded and the run queued again: 202 with the run to follow.
        assert refused.status_code == 202, refused.text
        assert refused.json()["status"] == "pending"
        assert refused.headers["Location"] == f"/api/v1/agent/runs/{refused.json()['run_id']}"
        detail = (
            await client.get(f"{APPROVALS}/{approval['id']}", headers=first.user.headers)
        ).json()
        assert detail["status"] == "approved"
        busy = await client.post(
            QUERY,
            json={"message": "hello?", "conversation_id": body["conversation_id"]},
            headers=first.user.headers,
        )
        # The approved run holds the thread until it has answered.
        assert busy.status_code == 409, busy.text
        assert busy.json()["error"] == "thread_busy"
        assert busy.json()["meta"]["run_id"] == refused.json()["run_id"]
    await app_factory.stop(down)

    # The email went out while the model was down; the answer waited for the model.
    app_factory.clock.advance(60)  # past the retry backoff
    back = await start_agent(scripted("Sent once the model was back."), user=first.user)
    conversation = await wait_idle(back.client, first.user.headers, body["conversation_id"])
    assert conversation["messages"][-1]["content"] == "Sent once the model was back."
    assert await back.outbox() == [EMAIL]


async def test_the_same_call_asked_again_after_a_rejection_is_refused_without_asking(
    start_agent: StartAgent,
) -> None:
    # A small model (Qwen2.5-Coder-1.5B) answers a rejection by asking for the very same call;
    # the person must not be asked the same question again and again.
    agent = await start_agent(
        scripted(
            *email_turn(),
            ask_tools(tool_call("send_email", EMAIL), content=WHY),
            "I did not send it.",
        )
    )
    [approval] = (await paused(agent))["approvals"]
    done = await agent.decide(approval["id"], "reject", {"reason": "wrong recipient"})
    assert done.status_code == 200, done.text
    turn = done.json()
    assert turn["status"] == "completed", turn
    assert turn["answer"] == "I did not send it."
    assert [c["status"] for c in turn["tool_calls"]] == ["rejected", "rejected"]
    assert "already refused" in turn["tool_calls"][1]["result"]
    listed = (await agent.client.get(APPROVALS, headers=agent.user.headers)).json()
    assert listed["total"] == 1
    assert await agent.outbox() == []
