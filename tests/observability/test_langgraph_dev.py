"""`langgraph dev` (LangGraph Studio's local server) serves every graph of langgraph.json offline.

The server runs in its own process group on a free port (2024 is taken on these machines), with
analytics, version checks and LangSmith tracing off, from a scratch directory so its in-memory
persistence files stay out of the repository. The graph's Studio path builds a ChatOpenAI from
the MAI_LLM_* variables, pointed here at a local OpenAI-compatible test server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import unavailable
from tests.observability.openai_server import OpenAIServer
from tests.observability.tooling import ROOT

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 45.0
RUN_SECONDS = 30.0
# Everything that would reach the internet from `langgraph dev`, turned off.
OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "LANGSMITH_TRACING_V2": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_API_KEY": "",
    "LANGCHAIN_API_KEY": "",
    "LANGGRAPH_CLOUD_LICENSE_KEY": "",
    "DO_NOT_TRACK": "1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port if port != 2024 else _free_port()


def _langgraph_cli() -> str:
    """The `langgraph` script of this environment (what `uv run langgraph` runs)."""
    path = shutil.which("langgraph", path=str(Path(sys.executable).parent))
    if path is None:
        unavailable("the langgraph CLI (uv sync --dev installs langgraph-cli[inmem])")
        raise AssertionError("unreachable")
    return path


def _graph_ids() -> list[str]:
    config = json.loads((ROOT / "langgraph.json").read_text())
    graphs = sorted(config["graphs"])
    assert graphs, "langgraph.json lists no graph"
    return graphs


def _scratch_config(directory: Path) -> Path:
    """langgraph.json with its paths made absolute, to run the server from `directory`.

    The server keeps its in-memory state in `.langgraph_api/` of its working directory and
    resolves graph paths against it too.
    """
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str((ROOT / dep).resolve()) for dep in config["dependencies"]]
    for graph_id, spec in config["graphs"].items():
        path, _, attribute = spec.partition(":")
        config["graphs"][graph_id] = f"{(ROOT / path).resolve()}:{attribute}"
    target = directory / "langgraph.json"
    target.write_text(json.dumps(config))
    return target


@pytest.fixture
def llm_server() -> Iterator[OpenAIServer]:
    """The test model: routes every question to a direct answer."""
    with OpenAIServer(reply="Studio says hello.", structured={"route": "direct"}) as server:
        yield server


@pytest.fixture
def langgraph_dev(llm_server: OpenAIServer, tmp_path: Path) -> Iterator[str]:
    """A running `langgraph dev` server; yields its base URL, kills its process group after."""
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MAI_", "LANGFUSE_"))},
        **OFFLINE_ENV,
        "MAI_LLM_BASE_URL": llm_server.base_url,
        "MAI_LLM_API_KEY": "test-key",
        "PYTHONPATH": str(ROOT),
    }
    log_path = tmp_path / "langgraph-dev.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                _langgraph_cli(),
                "dev",
                "--config",
                str(_scratch_config(tmp_path)),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--no-browser",
                "--no-reload",
            ],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"langgraph dev exited with {process.returncode}:\n{_tail(log_path)}")
            try:
                if httpx.get(f"{base_url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"langgraph dev did not start in {STARTUP_SECONDS}s:\n{_tail(log_path)}"
                )
            time.sleep(0.25)
        yield base_url
    finally:
        _kill_group(process)


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_every_graph_is_served_and_a_run_completes(
    langgraph_dev: str, llm_server: OpenAIServer
) -> None:
    with httpx.Client(base_url=langgraph_dev, timeout=RUN_SECONDS) as http:
        response = http.post("/assistants/search", json={"limit": 100})
        assert response.status_code == 200, response.text
        served = {assistant["graph_id"] for assistant in response.json()}
        for graph_id in _graph_ids():
            assert graph_id in served, f"{graph_id} from langgraph.json is not served: {served}"

        run = http.post(
            "/runs/wait",
            json={
                "assistant_id": "assistant",
                "input": {"messages": [{"role": "human", "content": "Say hello to Studio."}]},
            },
        )
        assert run.status_code == 200, run.text
        state = run.json()
        assert state.get("answer") == "Studio says hello.", state
        assert state["route"] == "direct"
        assert state["messages"][-1]["content"] == "Studio says hello."

        # The other graphs: the planner's drawing shows its stages, and a moderation run
        # with pattern-only PII detection (no model call) returns the sanitized text.
        ids = {assistant["graph_id"]: assistant["assistant_id"] for assistant in response.json()}
        drawing = http.get(f"/assistants/{ids['planner']}/graph")
        assert drawing.status_code == 200, drawing.text
        nodes = {node["id"] for node in drawing.json()["nodes"]}
        assert {"plan", "validate", "approve", "execute", "run_step", "synthesize"} <= nodes
        moderated = http.post(
            "/runs/wait",
            json={
                "assistant_id": "moderation",
                "input": {"text": "mail bob@example.com", "stages": ["sanitize"]},
                "context": {"model_pii": False},
            },
        )
        assert moderated.status_code == 200, moderated.text
        assert moderated.json()["sanitized"] == "mail [EMAIL_1]", moderated.json()

    # The run went through the test model: the route call (structured) and the answer call.
    assert len(llm_server.requests) >= 2
    assert all(request["model"] == llm_server.model for request in llm_server.requests)
    assert any("response_format" in request for request in llm_server.requests)
