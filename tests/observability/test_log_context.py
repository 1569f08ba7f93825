"""JSON log lines carry request, user, conversation and run ids, and the trace id when tracing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from langfuse import Langfuse

from tests.conftest import StartAgent
from tests.fake_llm import scripted
from tests.observability.conftest import QUERY, TraceCollector, tool_turn

pytestmark = pytest.mark.usefixtures("backend")


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log records in captured output (other lines are skipped)."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


@pytest.mark.parametrize("tracing", [False, True], ids=["untraced", "traced"])
async def test_turn_logs_carry_request_user_conversation_run_and_trace_ids(
    tracing: bool,
    capsys: pytest.CaptureFixture[str],
    trace_collector: TraceCollector,
    start_agent: StartAgent,
) -> None:
    # Fixture order matters: the app (started last) is stopped first, while the captured
    # stdout and the Langfuse stand-in its exporter writes to are still open.
    overrides: dict[str, Any] = {"log_level": "INFO", "log_format": "json"}
    if tracing:
        overrides |= {
            "langfuse_public_key": f"pk-lf-test-{uuid.uuid4().hex[:12]}",
            "langfuse_secret_key": "sk-lf-test",
            "langfuse_host": trace_collector.url,
        }
    agent = await start_agent(scripted(*tool_turn()), **overrides)
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    response = await agent.client.post(
        QUERY,
        json={"message": "What is 2+2?"},
        headers={**agent.user.headers, "X-Request-ID": request_id},
    )
    assert response.status_code == 200, response.text
    turn = response.json()
    records = json_lines(capsys.readouterr().out)
    expected = {
        "request_id": request_id,
        "user_id": agent.user.id,
        "conversation_id": turn["conversation_id"],
        "run_id": turn["run_id"],
    }
    if tracing:
        expected["trace_id"] = Langfuse.create_trace_id(seed=turn["run_id"])

    # The line the background run task writes when the turn ends...
    completed = [r for r in records if r.get("event") == "agent_run_completed"]
    assert len(completed) == 1, records
    assert {key: completed[0].get(key) for key in expected} == expected
    # ...and the access log line of the request that started it.
    access = [r for r in records if r.get("event") == "request" and r.get("path") == QUERY]
    assert len(access) == 1
    assert {key: access[0].get(key) for key in expected} == expected
    if not tracing:
        assert all("trace_id" not in record for record in records)
    # Every line written while the request or the run was handled has the request id.
    for record in records:
        if record.get("run_id") == turn["run_id"]:
            assert record.get("request_id") == request_id, record
