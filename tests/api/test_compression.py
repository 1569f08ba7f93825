"""Responses: JSON over 1 KB is gzipped for clients that accept it; SSE never is, and streams
event by event through a real HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.api.agent_helpers import Gate
from tests.conftest import StartAgent
from tests.fake_llm import ask_tools, scripted, tool_call

pytestmark = pytest.mark.usefixtures("backend")


async def test_large_json_is_gzipped_small_is_not(client: httpx.AsyncClient) -> None:
    large = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert large.status_code == 200
    assert large.headers["content-encoding"] == "gzip"
    # httpx decodes it: the body is the schema, and was sent compressed.
    assert large.json()["openapi"].startswith("3.")
    assert int(large.headers["content-length"]) < len(large.content)

    small = await client.get("/ready", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers
    plain = await client.get("/openapi.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


@contextlib.asynccontextmanager
async def _served(app: FastAPI) -> AsyncIterator[str]:
    """The already started app behind a real uvicorn server on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_sse_is_not_compressed_and_streams_unbuffered(start_agent: StartAgent) -> None:
    gate = Gate()
    agent = await start_agent(
        scripted({"route": "tools"}, ask_tools(tool_call("wait_gate", {})), "Done. " * 400),
        agent_stream_heartbeat_seconds=0.05,
    )
    gate.install(agent.resources)
    async with (
        _served(agent.app) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as http,
        http.stream(
            "POST",
            "/api/v1/agent/stream",
            json={"message": "wait"},
            headers={**agent.user.headers, "Accept-Encoding": "gzip"},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in response.headers
        received = ""
        chunks = response.aiter_text()
        # The run is held at the gate: whatever arrives now was sent before the turn ended.
        while "event: metadata" not in received or not gate.entered.is_set():
            received += await asyncio.wait_for(anext(chunks), timeout=30)
        gate.release.set()
        async for chunk in chunks:
            received += chunk
    assert "event: end" in received
    assert "Done." in received
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(received.encode())
