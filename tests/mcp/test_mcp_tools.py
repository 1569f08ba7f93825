"""MCP servers as agent tools: a local MCP server written with the `mcp` SDK (FastMCP), over
stdio and over streamable HTTP, its tools listed, bound to the model, called through the
runner (approval gate, exactly-once, truncation), its outage and return, and the admins'
switches. The servers file's start errors are tested with the README's table in
tests/unit/test_startup.py."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from tests.api.agent_helpers import wait_idle
from tests.conftest import Account, AppFactory, SettingsFactory, register
from tests.fake_llm import ask_tools, responding, tool_call

SERVER = Path(__file__).with_name("mcp_test_server.py")
TOOLS = "/api/v1/tools"
# What the model is told about a server that went away (before or during the call).
GONE = (
    r"MCP server 'inventory' (is unavailable|failed|went away)"
    r"|'inventory__lookup' is not available"
)
CALL = re.compile(r"^call (\S+) (\{.*\})$")

pytestmark = [pytest.mark.slow]


@pytest.fixture
def backend() -> str:
    """The MCP paths do not touch the database beyond the embedded default's."""
    return "sqlite"


def inventory_model(messages: list[BaseMessage]) -> AIMessage | str:
    """Routes to tools; `call <tool> <json args>` asks for that call; a tool result is
    repeated in the answer, so what the tool said reaches the user."""
    if messages and '{"route"' in str(messages[0].content):
        return '{"route": "tools"}'
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return f"The tool said: {last.content}"
    found = CALL.match(str(last.content))
    if found:
        return ask_tools(tool_call(found[1], json.loads(found[2])), content="Checking.")
    return "No tool needed."


def write_servers(path: Path, *servers: dict[str, Any]) -> Path:
    """A servers file (YAML is a superset of JSON)."""
    path.write_text(json.dumps({"servers": list(servers)}), encoding="utf-8")
    return path


def stdio_server(notes: Path, **extra: Any) -> dict[str, Any]:
    """The test server over stdio."""
    return {
        "name": "inventory",
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(SERVER), "stdio"],
        "env": {"MCP_TEST_NOTES": str(notes)},
        "deny": ["secret_admin_tool"],
        "tools": {"lookup": {"requires_approval": False}, "dump": {"requires_approval": False}},
        # 10 MB through a pipe takes a while on a busy machine.
        "timeout_seconds": 120,
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port if port != 2024 else free_port()


async def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60) -> None:
    """Poll an async predicate until it holds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


class Started:
    """An app with the scripted model and a user."""

    def __init__(self, app: Any, client: httpx.AsyncClient, user: Account, model: Any) -> None:
        self.app, self.client, self.user, self.model = app, client, user, model

    async def ask(self, message: str) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/agent/query", json={"message": message}, headers=self.user.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def tools(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.get(TOOLS, headers=headers or self.user.headers)
        assert response.status_code == 200, response.text
        return {tool["name"]: tool for tool in response.json()["data"]}

    async def mcp_health(self) -> dict[str, Any]:
        body = (await self.client.get("/health")).json()
        return {c["name"]: c["status"] for c in body["components"] if c["name"].startswith("mcp:")}


@pytest.fixture
async def start(app_factory: AppFactory, settings_factory: SettingsFactory) -> Any:
    """Start an app on a servers file, with the inventory model."""
    from tests.conftest import client_for
    from tests.kb.support import HashEmbedder

    clients: list[httpx.AsyncClient] = []

    async def make(servers_file: Path, **overrides: Any) -> Started:
        model = responding(inventory_model)
        settings = settings_factory(
            mcp_servers_file=servers_file,
            mcp_ping_seconds=0.3,
            mcp_retry_seconds=0.2,
            approval_sweep_seconds=3600,
            **overrides,
        )
        app = await app_factory(settings, chat_model=model, embedder=HashEmbedder())
        client = client_for(app)
        clients.append(client)
        return Started(app, client, await register(client), model)

    yield make
    for client in clients:
        await client.aclose()


async def test_stdio_server_tools_are_listed_bound_called_gated_and_truncated(
    start: Any, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    agent: Started = await start(
        write_servers(tmp_path / "mcp.yaml", stdio_server(notes)), health_details="public"
    )
    assert await agent.mcp_health() == {"mcp:inventory": "healthy"}
    [component] = [
        c
        for c in (await agent.client.get("/health")).json()["components"]
        if c["name"] == "mcp:inventory"
    ]
    assert component["backend"] == "stdio"
    # Two tools whose names collide once made model-safe: the second is skipped and reported.
    assert component["skipped_tools"] == ["stock_level (also inventory__stock_level)"]

    tools = await agent.tools()
    assert {"inventory__lookup", "inventory__write_note", "inventory__dump"} <= set(tools)
    assert "inventory__secret_admin_tool" not in tools  # denied by the file
    lookup = tools["inventory__lookup"]
    assert lookup["source"] == "mcp:inventory"
    assert lookup["server"] == "inventory"
    assert lookup["schema"]["properties"]["sku"]["type"] == "string"
    assert lookup["requires_approval"] is False
    assert tools["inventory__write_note"]["requires_approval"] is True  # the MCP default
    assert tools["calculator"]["source"] == "builtin"
    assert "inventory__stock_level" in tools

    turn = await agent.ask('call inventory__lookup {"sku": "A1"}')
    assert turn["status"] == "completed", turn
    assert turn["answer"].startswith("The tool said: SKU A1: 7 in stock"), turn["answer"]
    bound = {tool["function"]["name"] for tool in agent.model.bound_tools}
    assert "inventory__lookup" in bound
    [bound_lookup] = [
        t for t in agent.model.bound_tools if t["function"]["name"].endswith("lookup")
    ]
    assert bound_lookup["function"]["parameters"]["required"] == ["sku"]

    # Arguments the schema refuses are told to the model, not sent to the server.
    bad = await agent.ask('call inventory__lookup {"sku": 5}')
    assert "Invalid arguments for inventory__lookup" in bad["answer"], bad["answer"]

    # 10 MB of text comes back truncated, with a note the model reads first.
    big = await agent.ask('call inventory__dump {"megabytes": 10}')
    assert big["answer"].startswith(
        "The tool said: [Truncated by MAI: the tool returned 10,485,760 characters"
    ), big["answer"][:200]
    assert len(big["answer"]) < 200_000

    # An approval-gated MCP tool pauses before running, and runs once when approved.
    paused = await agent.ask('call inventory__write_note {"text": "hello"}')
    assert paused["status"] == "awaiting_approval", paused
    assert not notes.exists()
    [approval] = paused["approvals"]
    assert approval["tool"] == "inventory__write_note"
    approve = f"/api/v1/approvals/{approval['id']}/approve"
    done = await agent.client.post(approve, headers=agent.user.headers)
    assert done.status_code == 200, done.text
    assert done.json()["answer"] == "The tool said: noted: hello"
    again = await agent.client.post(approve, headers=agent.user.headers)
    assert again.status_code == 409, again.text
    await wait_idle(agent.client, agent.user.headers, paused["conversation_id"])
    assert notes.read_text().splitlines() == ["hello"]

    # The stdio server's process dies: the call fails with a clear error for the model,
    # /health shows it down, and the supervisor starts it again.
    pid = int(re.findall(r"pid (\d+)", turn["answer"])[0])
    os.kill(pid, signal.SIGKILL)
    failed = await agent.ask('call inventory__lookup {"sku": "B2"}')
    assert re.search(GONE, failed["answer"]), failed["answer"]
    await wait_for(lambda: _healthy(agent, "healthy"), "the stdio server to be started again", 60)
    back = await agent.ask('call inventory__lookup {"sku": "C3"}')
    assert back["answer"].startswith("The tool said: SKU C3: 7 in stock"), back["answer"]


async def _healthy(agent: Started, status: str) -> bool:
    return (await agent.mcp_health()).get("mcp:inventory") == status


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts the test server over streamable HTTP (again on the same port when asked again)."""
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def launch() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, str(SERVER), "http", str(port)],
            env={**os.environ, "MCP_TEST_NOTES": str(tmp_path / "notes.txt")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the test MCP server exited"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return process
            assert time.monotonic() < deadline, "the test MCP server did not listen"
            time.sleep(0.1)

    launch.port = port  # type: ignore[attr-defined]
    yield launch
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def test_http_server_down_then_back(start: Any, tmp_path: Path, http_server: Any) -> None:
    process = http_server()
    servers = write_servers(
        tmp_path / "mcp.yaml",
        {
            "name": "inventory",
            "transport": "streamable_http",
            "url": f"http://127.0.0.1:{http_server.port}/mcp",
            "headers": {"X-Test": "yes"},
            "allow": ["lookup"],
            "requires_approval": False,
            "timeout_seconds": 10,
        },
    )
    agent: Started = await start(servers)
    assert set(await agent.tools()) >= {"inventory__lookup"}
    assert "inventory__write_note" not in await agent.tools()  # not on the allow-list
    turn = await agent.ask('call inventory__lookup {"sku": "A1"}')
    assert turn["answer"].startswith("The tool said: SKU A1: 7 in stock"), turn

    process.kill()
    process.wait(10)
    failed = await agent.ask('call inventory__lookup {"sku": "B2"}')
    assert re.search(GONE, failed["answer"]), failed["answer"]
    await wait_for(lambda: _healthy(agent, "unhealthy"), "/health to show the server down")
    body = (await agent.client.get("/health")).json()
    assert body["status"] == "degraded"
    # Its tools are offered only while it is up.
    assert "inventory__lookup" not in await agent.tools()

    http_server()
    await wait_for(lambda: _healthy(agent, "healthy"), "the server to be back")
    back = await agent.ask('call inventory__lookup {"sku": "C3"}')
    assert back["answer"].startswith("The tool said: SKU C3: 7 in stock"), back


async def test_a_server_down_at_start_is_reported_and_retried(
    start: Any, tmp_path: Path, http_server: Any
) -> None:
    servers = write_servers(
        tmp_path / "mcp.yaml",
        {
            "name": "inventory",
            "transport": "streamable_http",
            "url": f"http://127.0.0.1:{http_server.port}/mcp",
            "connect_timeout_seconds": 2,
        },
    )
    agent: Started = await start(servers, mcp_start_timeout_seconds=3)
    assert await agent.mcp_health() == {"mcp:inventory": "unhealthy"}
    assert not any(name.startswith("inventory__") for name in await agent.tools())
    http_server()
    await wait_for(lambda: _healthy(agent, "healthy"), "the late server to be connected")
    assert "inventory__write_note" in await agent.tools()


async def test_admins_switch_a_server_off_and_it_stays_off(
    start: Any, tmp_path: Path, app_factory: AppFactory
) -> None:
    servers = write_servers(tmp_path / "mcp.yaml", stdio_server(tmp_path / "notes.txt"))
    agent: Started = await start(
        servers, admin_email="root@example.com", admin_password="admin-password-1"
    )
    login = await agent.client.post(
        "/api/v1/auth/login", json={"email": "root@example.com", "password": "admin-password-1"}
    )
    admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
    refused = await agent.client.patch(
        f"{TOOLS}/inventory", json={"enabled": False}, headers=agent.user.headers
    )
    assert refused.status_code == 403, refused.text
    off = await agent.client.patch(f"{TOOLS}/inventory", json={"enabled": False}, headers=admin)
    assert off.status_code == 200, off.text
    assert off.json()["name"] == "mcp:inventory"
    assert off.json()["kind"] == "server"
    assert {t["name"] for t in off.json()["tools"]} >= {"inventory__lookup"}
    assert not any(name.startswith("inventory__") for name in await agent.tools())
    listed = await agent.tools(admin)  # admins still see them, switched off
    assert listed["inventory__lookup"]["enabled"] is False
    turn = await agent.ask('call inventory__lookup {"sku": "A1"}')
    assert "'inventory__lookup' is not available" in turn["answer"], turn["answer"]
    missing = await agent.client.patch(f"{TOOLS}/nope", json={"enabled": False}, headers=admin)
    assert missing.status_code == 404, missing.text

    # Kept across a restart.
    settings = agent.app.state.settings
    await app_factory.stop(agent.app)
    again = await app_factory(settings, chat_model=responding(inventory_model))
    from tests.conftest import client_for

    async with client_for(again) as client:
        login = await client.post(
            "/api/v1/auth/login",
            json={"email": "root@example.com", "password": "admin-password-1"},
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        listed = {t["name"]: t for t in (await client.get(TOOLS, headers=admin)).json()["data"]}
        assert listed["inventory__lookup"]["enabled"] is False
        on = await client.patch(f"{TOOLS}/mcp:inventory", json={"enabled": True}, headers=admin)
        assert on.status_code == 200, on.text
        listed = {t["name"]: t for t in (await client.get(TOOLS, headers=admin)).json()["data"]}
        assert listed["inventory__lookup"]["enabled"] is True
