"""MAI_LOG_FORMAT=json: every line a server process writes, on stdout and on stderr, is one JSON
object, through a turn (streamed, as clients use it) and a knowledge-base ingestion. And the
route node's structured output raises no serializer warning at its cause."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from graphs.assistant import Context, builder
from tests.conftest import unavailable
from tests.observability.openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parents[2]
# ../shared next to the checkout (one level further up from a worktree under wt/).
MODEL_DIR = next(
    (
        path
        for base in (ROOT.parent, ROOT.parent.parent)
        if (path := base / "shared" / "models" / "minilm-onnx-int8").is_dir()
    ),
    ROOT.parent / "shared" / "models" / "minilm-onnx-int8",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, "mai serve exited during start"
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail("mai serve did not become ready")


def _exercise(base: str) -> None:
    """Sign in, ingest a document and wait for it, then stream a turn."""
    with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as http:
        login = http.post(
            "/auth/login", json={"email": "logs@example.com", "password": "a-good-password"}
        )
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        uploaded = http.post(
            "/kb/documents",
            files={"file": ("valve.md", b"# Valve\n\nThe Kestrel valve opens at 40 bar.\n")},
        )
        assert uploaded.status_code in (201, 202), uploaded.text
        document_id = uploaded.json()["id"]
        deadline = time.monotonic() + 120
        while http.get(f"/kb/documents/{document_id}").json()["status"] != "ready":
            assert time.monotonic() < deadline, "the document was not ingested"
            time.sleep(0.5)
        with http.stream("POST", "/agent/stream", json={"message": "Hello?"}) as stream:
            body = "".join(stream.iter_text())
        assert stream.status_code == 200
        assert "Hello from the test model." in body


@pytest.mark.slow
def test_every_line_of_a_server_is_one_json_object(tmp_path: Path) -> None:
    if not MODEL_DIR.is_dir():
        unavailable(f"the shared MiniLM model at {MODEL_DIR}")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    stdout_path, stderr_path = tmp_path / "stdout", tmp_path / "stderr"
    with OpenAIServer() as llm:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
        environ |= {
            "MAI_DATA_DIR": str(tmp_path / "data"),
            "MAI_LOG_FORMAT": "json",
            "MAI_LOG_LEVEL": "INFO",
            "MAI_LLM_BASE_URL": llm.base_url,
            "MAI_LLM_MODEL": "test-model",
            "MAI_EMBEDDING_MODEL_PATH": str(MODEL_DIR),
            "MAI_ADMIN_EMAIL": "logs@example.com",
            "MAI_ADMIN_PASSWORD": "a-good-password",
            "MAI_BCRYPT_ROUNDS": "4",
            "MAI_PORT": str(port),
            "PYTHONPATH": str(ROOT),
            # Warnings shown as they would be in production, each once.
            "PYTHONWARNINGS": "default",
        }
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve"],
                cwd=tmp_path,
                env=environ,
                stdout=out,
                stderr=err,
            )
            try:
                _wait_ready(process, base)
                _exercise(base)
            finally:
                process.terminate()
                process.wait(timeout=60)
    lines = stdout_path.read_text().splitlines() + stderr_path.read_text().splitlines()
    records: list[dict[str, Any]] = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(record, dict), line
        records.append(record)
    events = {record.get("event") for record in records}
    assert {"mai_started", "request", "mai_stopped"} <= events
    assert not [r for r in records if "PydanticSerializationUnexpectedValue" in str(r)]


async def test_route_structured_output_raises_no_serializer_warning() -> None:
    with OpenAIServer(structured={"route": "direct"}) as server:
        model = ChatOpenAI(
            base_url=server.base_url, api_key="test", model="test-model", stream_usage=True
        )
        graph = builder.compile(checkpointer=InMemorySaver())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Streamed as the service streams a turn: that is where the warning was raised.
            async for _ in graph.astream(
                {"messages": [HumanMessage("Hi")]},
                {"configurable": {"thread_id": "t"}},
                context=Context(llm=model),
                stream_mode=["messages", "updates"],
            ):
                pass
        state = await graph.aget_state({"configurable": {"thread_id": "t"}})
    assert state.values["route"] == "direct"
    assert not [w for w in caught if "serializ" in str(w.message)], [str(w.message) for w in caught]
