"""MAI as an MCP server: the `mcp` SDK's client against /mcp of a real `mai serve` (embedded
default, and PostgreSQL + Redis), with a local OpenAI-compatible server as the LLM."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.observability.openai_server import OpenAIServer
from tests.real_server import database_env, serve_mai, sign_up_with_key

__all__ = ["database_env"]

pytestmark = [pytest.mark.slow]

EMAIL = {"to": "ada@example.com", "subject": "Minutes", "body": "Here are the minutes."}


def respond(body: dict[str, Any]) -> str | dict[str, Any]:
    """The calculator for arithmetic, send_email when asked to mail, an echo otherwise."""
    messages = body.get("messages", [])
    last = messages[-1]
    if last.get("role") == "tool":
        return f"The result is {last['content']}."
    text = str(last.get("content") or "")
    if "6*7" in text:
        return {"tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}}}
    if "mail" in text:
        return {"tool_call": {"name": "send_email", "arguments": EMAIL}}
    earlier = [str(m.get("content")) for m in messages if m.get("role") == "user"][:-1]
    return f"You said: {text}" + (f" (after: {' | '.join(earlier)})" if earlier else "")


@pytest.fixture
def mai(tmp_path: Path, database_env: dict[str, str]) -> Iterator[str]:
    """A running `mai serve` (its base URL) with the test LLM."""
    env = {"MAI_MEMORY_ENABLED": "false", "MAI_MCP_GRAPHS": "assistant", **database_env}
    with (
        OpenAIServer(structured={"route": "tools"}, respond=respond) as llm,
        serve_mai(llm, tmp_path / "data", env) as base,
    ):
        yield base


async def _session_call(base: str, key: str, calls: list[dict[str, Any]]) -> list[Any]:
    """Open an MCP session with the key, list tools, make the calls; the tool list first."""
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        listed = await session.list_tools()
        results: list[Any] = [listed]
        for arguments in calls:
            results.append(await session.call_tool("assistant", arguments))
        return results


def test_the_mcp_sdk_drives_mai(mai: str) -> None:
    base = mai
    token, key = sign_up_with_key(base, "mcp@example.com", "mcp")
    _, other_key = sign_up_with_key(base, "other@example.com", "mcp")

    listed, first, follow, arithmetic, mail = asyncio.run(_flow(base, key))
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == {"assistant"}
    assert tools["assistant"].inputSchema["required"] == ["input"]
    assert "conversation_id" in tools["assistant"].inputSchema["properties"]

    assert first.isError is False
    assert first.structuredContent["status"] == "completed"
    assert first.structuredContent["answer"] == "You said: hello there"
    assert first.content[0].text == "You said: hello there"
    conversation = first.structuredContent["conversation_id"]

    assert follow.structuredContent["conversation_id"] == conversation
    assert follow.structuredContent["answer"] == "You said: and again (after: hello there)"

    assert arithmetic.structuredContent["answer"] == "The result is 42."

    # A run that pauses for approval answers at once with its approval id and status.
    assert mail.isError is False
    paused = mail.structuredContent
    assert paused["status"] == "awaiting_approval"
    [approval] = paused["approvals"]
    assert approval["tool"] == "send_email"
    assert approval["status"] == "pending"
    assert f"approval {approval['id']} (pending)" in mail.content[0].text
    decided = httpx.post(
        f"{base}/api/v1/approvals/{approval['id']}/approve",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert decided.status_code == 200, decided.text

    # The runs are the caller's, on the run engine, with usage like any other.
    conversations = httpx.get(
        f"{base}/api/v1/agent/conversations",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert conversation in {c["id"] for c in conversations["items"]}

    # Another user's conversation id is not found.
    [_, stolen] = asyncio.run(
        _session_call(base, other_key, [{"input": "hi", "conversation_id": conversation}])
    )
    assert stolen.isError is True
    assert "conversation_not_found" in stolen.content[0].text
    # And a wrong key is a 401, for the SDK and on the wire.
    refusal = _refusal(base)
    assert "401" in refusal, refusal
    raw = httpx.post(
        f"{base}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": "Bearer mai_wrong", "Accept": "application/json"},
        timeout=30,
    )
    assert raw.status_code == 401, raw.text
    assert raw.json()["error"] in {"invalid_api_key", "unauthorized"}, raw.text
    assert raw.headers["www-authenticate"] == "Bearer"
    assert httpx.post(f"{base}/mcp", json={}, timeout=30).status_code == 401


async def _flow(base: str, key: str) -> list[Any]:
    """One session: list, a new conversation, its follow-up, a tool turn, an approval."""
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        listed = await session.list_tools()
        first = await session.call_tool("assistant", {"input": "hello there"})
        conversation = first.structuredContent["conversation_id"]
        follow = await session.call_tool(
            "assistant", {"input": "and again", "conversation_id": conversation}
        )
        arithmetic = await session.call_tool("assistant", {"input": "what is 6*7?"})
        mail = await session.call_tool("assistant", {"input": "mail the minutes to Ada"})
        return [listed, first, follow, arithmetic, mail]


def _refusal(base: str) -> str:
    """What the SDK raises when its key is wrong ("" if it raises nothing)."""
    try:
        asyncio.run(asyncio.wait_for(_session_call(base, "mai_wrong", []), 60))
    except Exception as error:
        return _chain(error)
    return ""


def _chain(error: BaseException) -> str:
    """Every message of an error, its causes and its group's members."""
    parts = [f"{type(error).__name__}: {error}"]
    if isinstance(error, BaseExceptionGroup):
        parts.extend(_chain(inner) for inner in error.exceptions)
    if error.__cause__ is not None:
        parts.append(_chain(error.__cause__))
    return json.dumps(parts)
