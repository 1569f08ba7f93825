"""kill -9 of a worker process in the middle of a tool call: the runs resume on another worker
from their last checkpoint, answer completely, and the side effect happened exactly once.

Real processes: an API-only `mai serve` and `mai worker` processes sharing PostgreSQL and Redis,
an OpenAI-compatible test server as the model, and an SMTP server that takes each email and
then stalls, so the worker dies after the email left and before the tool reported it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.agent_helpers import parse_sse
from tests.conftest import REDIS_URL, unavailable
from tests.observability.openai_server import OpenAIServer

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT.parent / "shared" / "models" / "minilm-onnx-int8"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
EMAIL = {"to": "ada@example.com", "subject": "Minutes", "body": "Here are the minutes."}
TURNS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port if port != 2024 else _free_port()


class StallingInbox:
    """An SMTP handler that keeps each message, then never answers (the sender hangs)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content.decode(errors="replace"))
        await asyncio.sleep(3600)
        return "250 OK"


def respond(body: dict[str, Any]) -> str | dict[str, Any]:
    """Ask for the email first; answer once the tool has reported."""
    if any(m.get("role") == "tool" for m in body.get("messages", [])):
        return "I took care of the minutes."
    return {"tool_call": {"name": "send_email", "arguments": EMAIL}}


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database (asyncpg URL) for this test."""
    name = f"mai_crash_{uuid.uuid4().hex[:10]}"

    async def run(statement: str) -> None:
        try:
            admin = await asyncpg.connect(PG_ADMIN)
        except OSError:
            unavailable("PostgreSQL at 127.0.0.1:5432")
            return
        await admin.execute(statement)
        await admin.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _mai() -> str:
    path = shutil.which("mai", path=str(Path(sys.executable).parent))
    assert path is not None, "the mai script is not installed in this environment"
    return path


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [_mai(), *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


async def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_kill_9_of_a_worker_mid_tool_call_loses_and_repeats_nothing(
    database: str, tmp_path: Path
) -> None:
    from aiosmtpd.controller import Controller

    from app.core.config import Settings
    from app.core.db import create_engine, upgrade_schema

    engine = create_engine(Settings(database_url=database))
    await upgrade_schema(engine)
    await engine.dispose()

    inbox = StallingInbox()
    smtp_port = _free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    llm = OpenAIServer(structured={"route": "tools"}, respond=respond)
    api_port = _free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    base_env.update(
        {
            "MAI_DATABASE_URL": database,
            "MAI_REDIS_URL": REDIS_URL,
            "MAI_REDIS_PREFIX": f"crash-{uuid.uuid4().hex[:8]}:",
            "MAI_LLM_BASE_URL": llm.base_url,
            "MAI_LLM_MODEL": "test-model",
            "MAI_LLM_MAX_RETRIES": "0",
            "MAI_EMBEDDING_MODEL_PATH": str(MODEL_DIR),
            "MAI_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
            "MAI_APPROVAL_EXEMPT_TOOLS": "send_email",
            "MAI_RUN_LEASE_SECONDS": "2",
            "MAI_TOOL_TIMEOUT_SECONDS": "120",
            "MAI_BCRYPT_ROUNDS": "4",
            "MAI_LOG_LEVEL": "WARNING",
        }
    )

    def env(name: str, **extra: str) -> dict[str, str]:
        return {**base_env, "MAI_DATA_DIR": str(tmp_path / name), **extra}

    api = _start(
        ["serve", "--port", str(api_port)],
        env("api", MAI_RUN_WORKERS_ENABLED="false"),
        tmp_path / "api.log",
    )
    first = _start(["worker"], env("w1"), tmp_path / "w1.log")
    second: subprocess.Popen[bytes] | None = None
    base = f"http://127.0.0.1:{api_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:

            async def api_up() -> bool:
                try:
                    return (await client.get("/ready")).status_code == 200
                except httpx.TransportError:
                    assert api.poll() is None, (tmp_path / "api.log").read_text()
                    return False

            await _wait_for(api_up, 90, "the API")
            signup = await client.post(
                "/api/v1/auth/register",
                json={"email": "crash@example.com", "password": "correct-horse-1"},
            )
            assert signup.status_code == 201, signup.text
            login = await client.post(
                "/api/v1/auth/login",
                json={"email": "crash@example.com", "password": "correct-horse-1"},
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            turns = [
                asyncio.create_task(
                    client.post(
                        "/api/v1/agent/stream",
                        json={"message": f"Mail the minutes to Ada ({i})"},
                        headers=headers,
                    )
                )
                for i in range(TURNS)
            ]

            async def all_sent() -> bool:
                assert first.poll() is None, (tmp_path / "w1.log").read_text()
                return len(inbox.messages) == TURNS

            await _wait_for(all_sent, 120, "every email to reach the SMTP server")
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            second = _start(["worker"], env("w2"), tmp_path / "w2.log")

            streams = await asyncio.wait_for(asyncio.gather(*turns), 180)
            for response in streams:
                assert response.status_code == 200, response.text
                events, _ = parse_sse(response.text)
                assert events[-1].event == "end", response.text
                values = [e.data for e in events if e.event == "values"]
                assert values, response.text
                assert values[-1]["answer"] == "I took care of the minutes.", (
                    response.text + (tmp_path / "w2.log").read_text()
                )
                [call] = values[-1]["tool_calls"]
                assert call["name"] == "send_email"

            conversations = (
                await client.get("/api/v1/agent/conversations", headers=headers)
            ).json()
            assert conversations["total"] == TURNS
            for item in conversations["items"]:
                detail = (
                    await client.get(f"/api/v1/agent/conversations/{item['id']}", headers=headers)
                ).json()
                assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
                assert detail["running"] is False
                [run] = (
                    await client.get(
                        f"/api/v1/agent/conversations/{item['id']}/runs", headers=headers
                    )
                ).json()
                assert run["status"] == "success"
                assert run["attempt"] == 2
            # Each email left exactly once, although every tool node ran twice.
            assert len(inbox.messages) == TURNS
            # The threads take new messages again.
            again = await client.post(
                "/api/v1/agent/query",
                json={"message": "thanks", "conversation_id": conversations["items"][0]["id"]},
                headers=headers,
            )
            assert again.status_code == 200, again.text
    finally:
        for process in (api, first, second):
            if process is not None:
                _stop(process)
        llm.close()
        smtp.stop()
