"""The LangGraph Server API end to end: a real `mai serve` driven only by the official
`langgraph-sdk` Python client with MAI API keys (plus httpx for MAI's own sign-up and keys).

The model is the OpenAI-compatible test server; a message containing "slow" makes it take a
few seconds, so a run can be cancelled while it runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from langgraph_sdk import get_client

from tests.conftest import PG_ADMIN_URL, REDIS_URL, unavailable
from tests.observability.openai_server import OpenAIServer

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT.parent / "shared" / "models" / "minilm-onnx-int8"
REPLY = "Hello from the test model."
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port if port != 2024 else _free_port()


ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "admin-password-1"
EMAIL = {"to": "ada@example.com", "subject": "Minutes", "body": "Here are the minutes."}
SENT = "I sent the email."


def respond(body: dict[str, Any]) -> str | dict[str, Any]:
    """The plain reply; seconds late when the last user message asks for "slow"; a
    send_email call (which needs approval) when it asks for an email."""
    messages = body.get("messages", [])
    if messages and messages[-1].get("role") == "tool":
        return SENT
    users = [m for m in messages if m.get("role") == "user"]
    last = str(users[-1].get("content")) if users else ""
    if "slow" in last:
        time.sleep(6)
    if "brief" in last:
        time.sleep(1.5)
    if "temperature" in last:
        return f"temperature={body.get('temperature')}"
    if "email" in last:
        return {"tool_call": {"name": "send_email", "arguments": EMAIL}}
    return REPLY


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Both persistence paths, one server each for the whole module."""
    return str(request.param)


@pytest.fixture(scope="module")
def tmp_path(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Path:
    """A directory for the module's server (its database file, data dir and log)."""
    return tmp_path_factory.mktemp(f"lg-{backend}")


@pytest.fixture(scope="module")
def database_url(backend: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The database (and Redis) the server uses: a SQLite file, or a fresh PostgreSQL
    database with Redis."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'mai.db'}", {}
        return
    name = f"mai_lg_{uuid.uuid4().hex[:10]}"

    async def run(statement: str) -> bool:
        try:
            admin = await asyncpg.connect(PG_ADMIN_URL)
        except OSError:
            return False
        await admin.execute(statement)
        await admin.close()
        return True

    if not asyncio.run(run(f'CREATE DATABASE "{name}"')):
        unavailable("PostgreSQL at 127.0.0.1:5432")
    base = PG_ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1]
    yield (
        f"postgresql+asyncpg://{base}/{name}",
        {"MAI_REDIS_URL": REDIS_URL, "MAI_REDIS_PREFIX": f"lg-{uuid.uuid4().hex[:8]}:"},
    )
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
async def server(database_url: tuple[str, dict[str, str]], tmp_path: Path) -> AsyncIterator[str]:
    """A running `mai serve` on a free port, shared by the module's tests; its base URL."""
    from app.core.config import Settings
    from app.core.db import create_engine, upgrade_schema

    url, extra = database_url
    engine = create_engine(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    await upgrade_schema(engine)
    await engine.dispose()
    # The project's graphs and one with a subgraph.
    graphs = json.loads((ROOT / "langgraph.json").read_text())
    graphs["graphs"]["nested"] = "./tests/langgraph_api/nested_graph.py:graph"
    # Graph paths are read relative to the file, which lives elsewhere: link what they name.
    for linked in ("graphs", "tests"):
        (tmp_path / linked).symlink_to(ROOT / linked, target_is_directory=True)
    graphs_file = tmp_path / "langgraph.json"
    graphs_file.write_text(json.dumps(graphs))
    llm = OpenAIServer(structured={"route": "tools"}, respond=respond)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    env.update(
        {
            "MAI_DATABASE_URL": url,
            "MAI_DATA_DIR": str(tmp_path / "data"),
            "MAI_LLM_BASE_URL": llm.base_url,
            "MAI_LLM_MODEL": "test-model",
            "MAI_GRAPHS_FILE": str(graphs_file),
            "MAI_LLM_MAX_RETRIES": "0",
            "MAI_EMBEDDING_MODEL_PATH": str(MODEL_DIR),
            "MAI_BCRYPT_ROUNDS": "4",
            "MAI_LOG_LEVEL": "WARNING",
            # One server serves every test of the module: sign-ups and logins from 127.0.0.1
            # must not run into the per-minute auth limit.
            "MAI_AUTH_RATE_LIMIT_PER_MINUTE": "0",
            "MAI_ADMIN_EMAIL": ADMIN_EMAIL,
            "MAI_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **extra,
        }
    )
    mai = shutil.which("mai", path=str(Path(sys.executable).parent))
    assert mai is not None
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [mai, "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient(base_url=base) as client:
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if (await client.get("/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.3)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        llm.close()


async def _account(base: str, email: str) -> tuple[dict[str, str], str, str]:
    """Sign up; the bearer headers, a fresh API key and its id."""
    async with httpx.AsyncClient(base_url=base) as client:
        password = "correct-horse-1"
        signup = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
        assert signup.status_code == 201, signup.text
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        created = await client.post("/api/v1/api-keys", json={"name": "sdk"}, headers=headers)
        assert created.status_code == 201, created.text
        key = created.json()
        assert key["key"].startswith("mai_")
        assert len(key["key"]) >= 4 + 43
        return headers, key["key"], key["id"]


def _status(error: BaseException) -> int:
    assert isinstance(error, httpx.HTTPStatusError), repr(error)
    return error.response.status_code


async def test_the_official_python_sdk_drives_mai(server: str) -> None:
    headers, key, key_id = await _account(server, "ada@example.com")
    client = get_client(url=server, api_key=key)

    async with httpx.AsyncClient(base_url=server, headers=headers) as raw:
        soon = datetime.now(UTC) + timedelta(seconds=3)
        short = await raw.post(
            "/api/v1/api-keys", json={"name": "short", "expires_at": soon.isoformat()}
        )
        past = await raw.post(
            "/api/v1/api-keys",
            json={"name": "past", "expires_at": (soon - timedelta(days=1)).isoformat()},
        )
    assert short.status_code == 201, short.text
    assert past.status_code == 422, past.text
    short_lived = get_client(url=server, api_key=short.json()["key"])
    assert await short_lived.assistants.search(graph_id="assistant")

    # Meta and assistants.
    async with httpx.AsyncClient(base_url=server) as raw:
        assert (await raw.get("/ok")).json() == {"ok": True}
        assert (await raw.get("/info")).json()["flags"]["crons"] is False
        unauthenticated = await raw.post("/threads/search", json={})
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["error"] == "unauthorized"
    [assistant] = await client.assistants.search(graph_id="assistant")
    assert assistant["assistant_id"] == str(uuid.uuid5(NAMESPACE_GRAPH, "assistant"))
    everything = await client.assistants.search(limit=100)
    assert {a["graph_id"] for a in everything} >= {"assistant", "planner"}
    assert (await client.assistants.get("assistant"))["assistant_id"] == assistant["assistant_id"]
    assert (await client.assistants.get(assistant["assistant_id"]))["graph_id"] == "assistant"
    drawn = await client.assistants.get_graph(assistant["assistant_id"])
    assert {"call_model", "route"} <= {n["id"] for n in drawn["nodes"]}
    schemas = await client.assistants.get_schemas("assistant")
    assert "messages" in schemas["input_schema"]["properties"]
    with pytest.raises(httpx.HTTPStatusError) as missing:
        await client.assistants.get(str(uuid.uuid4()))
    assert _status(missing.value) == 404

    # Threads.
    thread = await client.threads.create(metadata={"purpose": "e2e"})
    thread_id = thread["thread_id"]
    assert thread["status"] == "idle"
    assert (await client.threads.get(thread_id))["metadata"]["purpose"] == "e2e"
    found = await client.threads.search(metadata={"purpose": "e2e"})
    assert [t["thread_id"] for t in found] == [thread_id]

    # A streamed run: values and messages-tuple, every event with an id.
    parts = [
        part
        async for part in client.runs.stream(
            thread_id,
            "assistant",
            input={"messages": [{"role": "user", "content": "Hi there"}]},
            stream_mode=["values", "messages-tuple"],
        )
    ]
    events = [p.event for p in parts]
    assert events[0] == "metadata", events
    assert "values" in events, events
    assert "messages" in events, events
    assert all(p.id for p in parts), parts
    final = [p.data for p in parts if p.event == "values"][-1]
    assert final["messages"][0]["content"] == "Hi there"
    assert final["messages"][-1]["type"] == "ai"
    assert final["messages"][-1]["content"] == REPLY
    token, meta = next(p.data for p in parts if p.event == "messages")
    assert token["type"].startswith("AIMessage")
    assert meta["langgraph_node"]

    state = await client.threads.get_state(thread_id)
    assert state["values"]["messages"][-1]["content"] == REPLY
    assert state["next"] == []
    assert state["checkpoint"]["checkpoint_id"]
    history = await client.threads.get_history(thread_id, limit=3)
    assert len(history) == 3
    assert history[0]["checkpoint"] == state["checkpoint"]

    # The same thread is a conversation of MAI's own API, with the same messages.
    async with httpx.AsyncClient(base_url=server, headers=headers) as raw:
        conversation = (await raw.get(f"/api/v1/agent/conversations/{thread_id}")).json()
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert conversation["messages"][1]["content"] == REPLY

    # wait, a background run with join, get and list.
    waited = await client.runs.wait(
        thread_id, "assistant", input={"messages": [{"role": "user", "content": "Again"}]}
    )
    assert isinstance(waited, dict)
    assert len(waited["messages"]) == 4
    run = await client.runs.create(
        thread_id, "assistant", input={"messages": [{"role": "user", "content": "Third"}]}
    )
    joined = await client.runs.join(thread_id, run["run_id"])
    assert isinstance(joined, dict)
    assert joined["messages"][-2]["content"] == "Third"
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"
    listed = await client.runs.list(thread_id)
    assert listed[0]["run_id"] == run["run_id"]
    assert len(listed) == 3

    # join_stream from a Last-Event-ID: exactly the events after it.
    run = await client.runs.create(
        thread_id,
        "assistant",
        input={"messages": [{"role": "user", "content": "Fourth"}]},
        stream_mode=["values", "updates"],
    )
    whole = [p async for p in client.runs.join_stream(thread_id, run["run_id"])]
    assert whole[0].event == "metadata"
    assert whole[-1].event == "values"
    rest = [
        p
        async for p in client.runs.join_stream(thread_id, run["run_id"], last_event_id=whole[0].id)
    ]
    assert [p.id for p in rest] == [p.id for p in whole[1:]]

    # A busy thread refuses a second run under reject (409); cancel stops the first.
    slow = await client.runs.create(
        thread_id, "assistant", input={"messages": [{"role": "user", "content": "slow one"}]}
    )
    with pytest.raises(httpx.HTTPStatusError) as busy:
        await client.runs.create(
            thread_id, "assistant", input={"messages": [{"role": "user", "content": "x"}]}
        )
    assert _status(busy.value) == 409
    await client.runs.cancel(thread_id, slow["run_id"], wait=True)
    assert (await client.runs.get(thread_id, slow["run_id"]))["status"] == "interrupted"

    # Bad input: 422 in MAI's error shape.
    with pytest.raises(httpx.HTTPStatusError) as bad:
        await client.runs.create(thread_id, "assistant", input={}, stream_mode="nonsense")
    assert _status(bad.value) == 422
    with pytest.raises(httpx.HTTPStatusError) as both:
        await client.runs.wait(thread_id, "assistant", input={}, command={"resume": "x"})
    assert _status(both.value) == 422
    assert both.value.response.json()["error"] == "input_and_command"

    # A stateless run leaves no thread behind.
    before = len(await client.threads.search(limit=100))
    stateless = await client.runs.wait(
        None, "assistant", input={"messages": [{"role": "user", "content": "Stateless"}]}
    )
    assert isinstance(stateless, dict)
    assert stateless["messages"][-1]["content"] == REPLY
    assert len(await client.threads.search(limit=100)) == before

    # The assistant pauses for approval; Command(resume=...) through the SDK decides the
    # approval on MAI's approval resource and continues the run.
    mail_thread = (await client.threads.create())["thread_id"]
    paused = await client.runs.wait(
        mail_thread,
        "assistant",
        input={"messages": [{"role": "user", "content": "Please email Ada the minutes"}]},
    )
    assert isinstance(paused, dict)
    [pause] = paused["__interrupt__"]
    [request] = pause["value"]["approvals"]
    assert request["tool"] == "send_email"
    # The same request in LangChain's human-in-the-loop shape, for Agent Chat UI.
    [action] = pause["value"]["action_requests"]
    assert (action["name"], action["args"]) == ("send_email", EMAIL)
    assert "approve" in pause["value"]["review_configs"][0]["allowed_decisions"]
    assert (await client.threads.get(mail_thread))["status"] == "interrupted"
    paused_state = await client.threads.get_state(mail_thread)
    assert paused_state["next"] == ["tools"]
    assert paused_state["tasks"][0]["interrupts"][0]["id"] == pause["id"]
    resumed = await client.runs.wait(
        mail_thread, "assistant", command={"resume": {"decisions": [{"type": "approve"}]}}
    )
    assert isinstance(resumed, dict)
    assert resumed["messages"][-1]["content"] == SENT
    async with httpx.AsyncClient(base_url=server, headers=headers) as raw:
        me = (await raw.get("/api/v1/users/me")).json()
        approval = (await raw.get(f"/api/v1/approvals/{request['approval_id']}")).json()
    assert approval["status"] == "approved"
    assert approval["decided_by"] == me["id"]
    assert (await client.threads.get(mail_thread))["status"] == "idle"

    # Another user's key sees none of it.
    _, other_key, _ = await _account(server, "bob@example.com")
    other = get_client(url=server, api_key=other_key)
    assert await other.threads.search() == []
    for attempt in (
        other.threads.get(thread_id),
        other.threads.get_state(thread_id),
        other.runs.get(thread_id, run["run_id"]),
        other.runs.wait(thread_id, "assistant", input={"messages": []}),
    ):
        with pytest.raises(httpx.HTTPStatusError) as hidden:
            await attempt
        assert _status(hidden.value) == 404
    assert len(await other.assistants.search()) >= 1  # system assistants are everyone's

    # Deleting the thread; then a revoked key is 401.
    await client.threads.delete(thread_id)
    with pytest.raises(httpx.HTTPStatusError) as gone:
        await client.threads.get(thread_id)
    assert _status(gone.value) == 404
    async with httpx.AsyncClient(base_url=server, headers=headers) as raw:
        listed_keys = (await raw.get("/api/v1/api-keys")).json()
        assert {k["id"] for k in listed_keys} == {key_id, short.json()["id"]}
        assert "key" not in listed_keys[0]
        assert (await raw.delete(f"/api/v1/api-keys/{key_id}")).status_code == 204
    with pytest.raises(httpx.HTTPStatusError) as revoked:
        await client.threads.search()
    assert _status(revoked.value) == 401
    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()))
    with pytest.raises(httpx.HTTPStatusError) as expired:
        await short_lived.assistants.search()
    assert _status(expired.value) == 401
    assert expired.value.response.json()["error"] == "api_key_expired"


JS_DIR = Path(__file__).parent / "js"


async def test_the_official_js_sdk_smoke(server: str) -> None:
    """The same smoke under Node with @langchain/langgraph-sdk: a streamed run with values +
    messages-tuple, and an approval resumed with a Command."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("Node.js and npm")
        return
    if not (JS_DIR / "node_modules" / "@langchain" / "langgraph-sdk").is_dir():
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True, timeout=300
        )
        assert installed.returncode == 0, installed.stderr.decode()
    _, key, _ = await _account(server, "js@example.com")
    env = {
        **os.environ,
        "MAI_URL": server,
        "MAI_API_KEY": key,
        "MAI_REPLY": REPLY,
        "MAI_SENT": SENT,
    }
    process = await asyncio.create_subprocess_exec(
        node,
        "smoke.mjs",
        cwd=JS_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, output.decode()
    assert output.decode().strip().endswith("OK")


async def _admin_client(base: str) -> Any:
    """An SDK client with an API key of the configured admin."""
    async with httpx.AsyncClient(base_url=base) as raw:
        login = await raw.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        created = await raw.post("/api/v1/api-keys", json={"name": "admin"}, headers=headers)
        assert created.status_code == 201, created.text
    return get_client(url=base, api_key=created.json()["key"])


def _say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def test_user_assistants_and_thread_tools(server: str) -> None:
    """Assistants a user creates (versions, latest, search, their context used by runs),
    threads copied and edited with update_state, batches, and an admin reading any thread."""
    _, key, _ = await _account(server, "cleo@example.com")
    client = get_client(url=server, api_key=key)
    _, other_key, _ = await _account(server, "dan@example.com")
    other = get_client(url=server, api_key=other_key)

    # Create, read, search, count; a graph id stands for its system assistant.
    created = await client.assistants.create(
        "assistant",
        context={"llm_params": {"temperature": 0.25}},
        metadata={"team": "docs"},
        name="Docs bot",
        description="Answers about the docs",
    )
    bot = created["assistant_id"]
    assert created["version"] == 1
    assert created["graph_id"] == "assistant"
    assert (await client.assistants.get(bot))["name"] == "Docs bot"
    assert [
        a["assistant_id"] for a in await client.assistants.search(metadata={"team": "docs"})
    ] == [bot]
    assert await client.assistants.count(graph_id="assistant") == 2
    assert [a["assistant_id"] for a in await client.assistants.search(name="docs")] == [bot]
    same = await client.assistants.create("assistant", assistant_id=bot, if_exists="do_nothing")
    assert same["name"] == "Docs bot"
    with pytest.raises(httpx.HTTPStatusError) as taken:
        await client.assistants.create("assistant", assistant_id=bot)
    assert _status(taken.value) == 409
    with pytest.raises(httpx.HTTPStatusError) as unknown_graph:
        await client.assistants.create("no-such-graph")
    assert _status(unknown_graph.value) == 422

    # PATCH makes version 2 (metadata merged); versions; latest goes back to 1.
    updated = await client.assistants.update(bot, name="Docs bot 2", metadata={"tier": "gold"})
    assert updated["version"] == 2
    assert updated["metadata"] == {"team": "docs", "tier": "gold"}
    versions = await client.assistants.get_versions(bot)
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["name"] == "Docs bot"
    back = await client.assistants.set_latest(bot, 1)
    assert (back["version"], back["name"]) == (1, "Docs bot")
    assert (await client.assistants.get(bot))["metadata"] == {"team": "docs"}
    with pytest.raises(httpx.HTTPStatusError) as system:
        await client.assistants.update("assistant", name="mine now")
    assert _status(system.value) == 409
    assert (await client.assistants.get_graph(bot))["nodes"]
    assert "messages" in (await client.assistants.get_schemas(bot))["input_schema"]["properties"]
    assert await client.assistants.get_subgraphs(bot) == {}

    # A run of the assistant uses its context (the model gets its temperature), and the run
    # and thread name it.
    thread_id = (await client.threads.create())["thread_id"]
    answered = await client.runs.wait(thread_id, bot, input=_say("Which temperature?"))
    assert isinstance(answered, dict)
    assert answered["messages"][-1]["content"] == "temperature=0.25"
    [run] = await client.runs.list(thread_id)
    assert run["assistant_id"] == bot
    assert (await client.threads.get(thread_id))["metadata"]["assistant_id"] == bot

    # Another user neither sees nor runs it.
    with pytest.raises(httpx.HTTPStatusError) as hidden:
        await other.assistants.get(bot)
    assert _status(hidden.value) == 404
    assert bot not in {a["assistant_id"] for a in await other.assistants.search(limit=100)}
    with pytest.raises(httpx.HTTPStatusError) as not_theirs:
        await other.runs.wait(None, bot, input=_say("hi"))
    assert _status(not_theirs.value) == 404

    # Copy: a new thread with the same state, history and messages.
    copied = await client.threads.copy(thread_id)
    assert copied["thread_id"] != thread_id
    original_state = await client.threads.get_state(thread_id)
    copied_state = await client.threads.get_state(copied["thread_id"])
    assert copied_state["values"]["messages"] == original_state["values"]["messages"]
    assert len(await client.threads.get_history(copied["thread_id"], limit=50)) == len(
        await client.threads.get_history(thread_id, limit=50)
    )

    # update_state as a node: a new checkpoint holding the edit; an unknown node is 422.
    written = await client.threads.update_state(
        copied["thread_id"],
        {"messages": [{"type": "ai", "content": "Edited by hand"}]},
        as_node="call_model",
    )
    edited = await client.threads.get_state(copied["thread_id"])
    assert edited["checkpoint"]["checkpoint_id"] == written["checkpoint"]["checkpoint_id"]
    assert edited["values"]["messages"][-1]["content"] == "Edited by hand"
    assert (await client.threads.get_state(thread_id))["values"] == original_state["values"]
    with pytest.raises(httpx.HTTPStatusError) as bad_node:
        await client.threads.update_state(thread_id, {}, as_node="nope")
    assert _status(bad_node.value) == 422

    # A batch: one run on a thread, one on a new thread.
    batch = await client.runs.create_batch(
        [
            {"thread_id": thread_id, "assistant_id": "assistant", "input": _say("Batch one")},
            {"assistant_id": "assistant", "input": _say("Batch two")},
        ]
    )
    assert [r["thread_id"] == thread_id for r in batch] == [True, False]
    for item in batch:
        joined = await client.runs.join(item["thread_id"], item["run_id"])
        assert isinstance(joined, dict)
        assert joined["messages"][-1]["content"] == REPLY

    # An admin reads any user's thread and runs; the other user still cannot.
    admin = await _admin_client(server)
    assert (await admin.threads.get(thread_id))["thread_id"] == thread_id
    assert (await admin.threads.get_state(thread_id))["values"]["messages"]
    assert (await admin.runs.get(thread_id, run["run_id"]))["status"] == "success"
    assert len(await admin.runs.list(thread_id)) == 2
    with pytest.raises(httpx.HTTPStatusError) as still_hidden:
        await other.threads.get(thread_id)
    assert _status(still_hidden.value) == 404

    # Deleting it with delete_threads removes the threads that still name it: the copy (the
    # original's last run was of the system assistant).
    await client.assistants.delete(bot, delete_threads=True)
    for gone in (client.assistants.get(bot), client.threads.get(copied["thread_id"])):
        with pytest.raises(httpx.HTTPStatusError) as deleted:
            await gone
        assert _status(deleted.value) == 404
    assert (await client.threads.get(thread_id))["metadata"]["assistant_id"] != bot


class _Hooks:
    """A local receiver of run webhooks: the JSON bodies it was POSTed."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bodies: list[dict[str, Any]] = []
        self.arrived = threading.Event()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                hooks.bodies.append(json.loads(self.rfile.read(length)))
                hooks.arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


async def _status_becomes(client: Any, thread_id: str, run_id: str, wanted: str) -> None:
    deadline = time.monotonic() + 60
    while (status := (await client.runs.get(thread_id, run_id))["status"]) != wanted:
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.2)


async def test_run_options_and_multitask_strategies(server: str) -> None:
    """checkpoint_id, interrupt_before, webhook, after_seconds, on_disconnect, the `messages`
    stream mode, and every multitask strategy, through the Python SDK."""
    _, key, _ = await _account(server, "eve@example.com")
    client = get_client(url=server, api_key=key)
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "assistant", input=_say("First"))
    after_first = (await client.threads.get_state(thread_id))["checkpoint"]["checkpoint_id"]
    await client.runs.wait(thread_id, "assistant", input=_say("Second"))

    # The `messages` mode: metadata when a message starts, then the message as it grows.
    parts = [
        p
        async for p in client.runs.stream(
            thread_id, "assistant", input=_say("Third"), stream_mode="messages"
        )
    ]
    events = [p.event for p in parts]
    assert "messages/metadata" in events, events
    grown = [p.data for p in parts if p.event in ("messages/partial", "messages/complete")]
    assert any(data[0]["content"] == REPLY for data in grown), grown

    # The `events` mode: every callback event (the root's own stream parts excepted), next to
    # the other modes asked for, which stream as without it.
    parts = [
        p
        async for p in client.runs.stream(
            thread_id, "assistant", input=_say("Events"), stream_mode=["events", "values"]
        )
    ]
    names = [p.event for p in parts]
    assert names[0] == "metadata", names
    assert "error" not in names, names
    events = [p.data for p in parts if p.event == "events"]
    kinds = {e["event"] for e in events}
    assert {"on_chain_start", "on_chain_end", "on_chat_model_stream"} <= kinds, kinds
    root = next(e for e in events if e["event"] == "on_chain_start")
    assert root["parent_ids"] == [], root
    assert root["data"]["input"]["messages"], root
    assert not [
        e for e in events if e["event"] == "on_chain_stream" and e["run_id"] == root["run_id"]
    ]
    tokens = "".join(
        str(e["data"]["chunk"]["content"]) for e in events if e["event"] == "on_chat_model_stream"
    )
    # The router's structured calls stream too; the reply's tokens are among them.
    assert REPLY in tokens, tokens
    values = [p.data for p in parts if p.event == "values"]
    assert values[-1]["messages"][-1]["content"] == REPLY, values[-1]
    assert {"messages", "updates"}.isdisjoint(names), names
    with pytest.raises(httpx.HTTPStatusError) as unknown_mode:
        await client.runs.create(thread_id, "assistant", input=_say("x"), stream_mode="bogus")
    assert _status(unknown_mode.value) == 422

    # `durability`: `exit` stores the thread's state once, at the end; the default stores
    # every step before the next one starts.
    stepwise = (await client.threads.create())["thread_id"]
    await client.runs.wait(stepwise, "assistant", input=_say("Each step"))
    at_exit = (await client.threads.create())["thread_id"]
    await client.runs.wait(at_exit, "assistant", input=_say("At exit"), durability="exit")
    assert len(await client.threads.get_history(at_exit)) == 1
    assert len(await client.threads.get_history(stepwise)) > 3
    assert (await client.threads.get_state(at_exit))["values"]["messages"][-1]["content"] == REPLY

    # A run from an earlier checkpoint forks the thread there.
    forked = await client.runs.wait(
        thread_id, "assistant", input=_say("Fork"), checkpoint_id=after_first
    )
    assert isinstance(forked, dict)
    assert [m["content"] for m in forked["messages"]][::2] == ["First", "Fork"]
    elsewhere = (await client.threads.create())["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as foreign:
        await client.runs.wait(elsewhere, "assistant", input=_say("x"), checkpoint_id=after_first)
    assert _status(foreign.value) == 404

    # interrupt_before pauses ahead of the node; a run without input goes on from there.
    paused = await client.runs.create(
        elsewhere, "assistant", input=_say("Pause please"), interrupt_before=["call_model"]
    )
    await client.runs.join(elsewhere, paused["run_id"])
    assert (await client.runs.get(elsewhere, paused["run_id"]))["status"] == "interrupted"
    assert (await client.threads.get_state(elsewhere))["next"] == ["call_model"]
    went_on = await client.runs.wait(elsewhere, "assistant", input=None)
    assert isinstance(went_on, dict)
    assert went_on["messages"][-1]["content"] == REPLY
    with pytest.raises(httpx.HTTPStatusError) as no_node:
        await client.runs.create(elsewhere, "assistant", input={}, interrupt_after=["nope"])
    assert _status(no_node.value) == 422

    # after_seconds: pending at first, run later; the webhook gets the run when it ends.
    hooks = _Hooks()
    try:
        later = await client.runs.create(
            elsewhere, "assistant", input=_say("Later"), after_seconds=1, webhook=hooks.url
        )
        assert later["status"] == "pending"
        joined = await client.runs.join(elsewhere, later["run_id"])
        assert isinstance(joined, dict)
        assert joined["messages"][-1]["content"] == REPLY
        assert await asyncio.to_thread(hooks.arrived.wait, 30)
    finally:
        hooks.close()
    [hook] = hooks.bodies
    assert (hook["run_id"], hook["status"], hook["event"]) == (later["run_id"], "success", "run")

    # on_disconnect: cancel stops the run when the streaming client goes away.
    from contextlib import aclosing

    async with aclosing(
        client.runs.stream(
            elsewhere, "assistant", input=_say("slow goodbye"), on_disconnect="cancel"
        )
    ) as stream:
        first = await anext(stream)
    assert first.event == "metadata"
    await _status_becomes(client, elsewhere, first.data["run_id"], "interrupted")

    # Multitask strategies on a busy thread (reject is tested above).
    busy = (await client.threads.create())["thread_id"]
    for strategy in ("interrupt", "rollback"):
        slow = await client.runs.create(busy, "assistant", input=_say(f"brief {strategy}"))
        await _status_becomes(client, busy, slow["run_id"], "running")
        newer = await client.runs.create(
            busy, "assistant", input=_say(f"after {strategy}"), multitask_strategy=strategy
        )
        done = await client.runs.join(busy, newer["run_id"])
        assert isinstance(done, dict)
        assert (await client.runs.get(busy, slow["run_id"]))["status"] == "interrupted"
        said = [m["content"] for m in done["messages"] if m["type"] == "human"]
        assert f"after {strategy}" in said
        assert (f"brief {strategy}" in said) is (strategy == "interrupt"), said
    first_run = await client.runs.create(busy, "assistant", input=_say("brief queued one"))
    queued = await client.runs.create(
        busy, "assistant", input=_say("queued two"), multitask_strategy="enqueue"
    )
    assert queued["status"] == "pending"
    done = await client.runs.join(busy, queued["run_id"])
    assert isinstance(done, dict)
    assert (await client.runs.get(busy, first_run["run_id"]))["status"] == "success"
    said = [m["content"] for m in done["messages"] if m["type"] == "human"]
    assert said[-2:] == ["brief queued one", "queued two"]

    # Subgraphs: their parts under `mode|namespace` names when asked for, and their schemas.
    nested = [
        p
        async for p in client.runs.stream(
            None,
            "nested",
            input={"steps": []},
            stream_mode=["updates", "values"],
            stream_subgraphs=True,
        )
    ]
    inside = [p for p in nested if p.event.startswith("updates|child:")]
    assert [p.data for p in inside] == [{"inner": {"steps": ["inner"]}}], nested
    assert [p.data for p in nested if p.event == "values"][-1]["steps"][-1] == "inner"
    flat = [
        p.event
        async for p in client.runs.stream(
            None, "nested", input={"steps": []}, stream_mode=["updates"]
        )
    ]
    assert not [e for e in flat if "|" in e], flat
    assert list(await client.assistants.get_subgraphs("nested")) == ["child"]
