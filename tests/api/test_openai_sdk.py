"""The OpenAI-compatible API as its users meet it: the official `openai` SDK against a real
`mai serve` (embedded SQLite, the default, and PostgreSQL + Redis), with a local
OpenAI-compatible server as the LLM.

The SDK authenticates with a MAI API key, as chat front ends do. It runs the README's snippet
as written, then lists models, completes plain and streamed, continues a session with
`X-Session-ID`, runs stateless requests on temporary threads, runs a calculator turn, passes
sampling settings and `user` to the model, answers a knowledge question with its sources,
pauses for an approval decided through `/api/v1`, checks usage against the runs and the usage
events, and that refusals arrive as the SDK's typed errors. One server per backend serves the
whole module.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.observability.openai_server import OpenAIServer
from tests.real_server import database_env, serve_mai, sign_up_with_key

__all__ = ["database_env"]  # the fixture, used by name

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


EMAIL = {"to": "ada@example.com", "subject": "Minutes", "body": "Here are the minutes."}
KB_ANSWER = "An amber light with ERR-4471 means the fan failed [1]."
RELEASE = threading.Event()
# USD per million tokens of the test model.
PRICE_IN, PRICE_OUT = 1000, 4000


def respond(body: dict[str, Any]) -> str | dict[str, Any]:
    """The test model: the calculator for arithmetic, the knowledge base for the amber light,
    send_email for the minutes (each answered from its tool's result), an echo otherwise."""
    messages = body.get("messages", [])
    last = messages[-1]
    if last.get("role") == "tool":
        asked = next(m for m in reversed(messages) if m.get("tool_calls"))
        tool = asked["tool_calls"][0]["function"]["name"]
        if tool == "kb_search":
            return KB_ANSWER
        if tool == "send_email":
            return "I sent the minutes to Ada."
        return f"The result is {last['content']}."
    text = str(last.get("content") or "")
    if "6*7" in text:
        return {"tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}}}
    if "amber light" in text:
        return {"tool_call": {"name": "kb_search", "arguments": {"query": "ERR-4471 amber"}}}
    if "Mail the minutes" in text:
        return {"tool_call": {"name": "send_email", "arguments": EMAIL}}
    if "Take your time" in text:
        # Held until the test lets the answer go (the client has left by then).
        assert RELEASE.wait(60), "the test never released the slow answer"
    return f"You said: {text}"


@pytest.fixture(scope="module")
def mai(
    tmp_path_factory: pytest.TempPathFactory, database_env: dict[str, str]
) -> Iterator[tuple[str, OpenAIServer]]:
    """A running `mai serve` on a free port (its base URL) and its test LLM, for the module."""
    tmp_path = tmp_path_factory.mktemp("mai-openai")
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"models:\n  test-model: {{input: {PRICE_IN}, output: {PRICE_OUT}}}\n")
    env = {
        # Session continuity is what is measured here: long-term memory would carry the name
        # into stateless requests too (it has tests of its own in tests/memory).
        "MAI_MEMORY_ENABLED": "false",
        "MAI_MODEL_PRICES_FILE": str(prices),
        **database_env,
    }
    with (
        OpenAIServer(structured={"route": "tools"}, respond=respond) as llm,
        serve_mai(llm, tmp_path / "data", env) as base,
    ):
        yield base, llm


def _conversation_ids(base: str, token: str) -> list[str]:
    listed = httpx.get(
        f"{base}/api/v1/agent/conversations",
        headers={"Authorization": f"Bearer {token}"},
        params={"limit": 100},
        timeout=30,
    )
    assert listed.status_code == 200, listed.text
    return [c["id"] for c in listed.json()["items"]]


def _mai(completion: Any) -> dict[str, Any]:
    """The `mai` extension of a completion or chunk, as the SDK keeps it."""
    extra = completion.model_extra
    assert extra is not None, completion
    assert "mai" in extra, completion
    found: dict[str, Any] = extra["mai"]
    return found


def _readme_snippet() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## OpenAI-compatible API", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the README's OpenAI section has no python snippet"
    return match.group(1)


def test_the_openai_sdk_drives_mai(mai: tuple[str, OpenAIServer]) -> None:
    base, llm = mai
    token, key = sign_up_with_key(base, "sdk@example.com", "openai sdk")

    # The README's snippet, as written, run as a user would run it.
    snippet = subprocess.run(
        [sys.executable, "-c", _readme_snippet()],
        env={**os.environ, "MAI_URL": base, "MAI_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert snippet.returncode == 0, snippet.stderr
    assert snippet.stdout.splitlines() == [
        "['mai-assistant', 'mai-planner']",
        "You said: My name is Ada.",
    ]

    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=60)
    models = client.models.list()
    assert [(m.id, m.owned_by) for m in models] == [
        ("mai-assistant", "mai"),
        ("mai-planner", "mai"),
    ]

    # The snippet's session goes on: the model sees the first turn with the second.
    raw = client.chat.completions.with_raw_response.create(
        model="mai-assistant",
        messages=[{"role": "user", "content": "What is my name?"}],
        extra_headers={"X-Session-ID": "my-chat-1"},
        temperature=0.2,
        max_tokens=50,
    )
    assert raw.headers["X-Session-ID"] == "my-chat-1"
    second = raw.parse()
    assert second.choices[0].message.content == "You said: What is my name?"
    answering = llm.requests[-1]
    assert "My name is Ada." in str(answering["messages"])
    assert answering["temperature"] == 0.2
    assert (answering.get("max_completion_tokens") or answering.get("max_tokens")) == 50
    # Only the answering call: the routing call of the same turn keeps the model's defaults.
    routing = [r for r in llm.requests if r.get("response_format")]
    assert routing
    assert "temperature" not in routing[-1]
    conversation_id = _mai(second)["conversation_id"]
    assert conversation_id in _conversation_ids(base, token)
    assert second.usage is not None
    assert second.usage.prompt_tokens > 0
    assert second.usage.total_tokens == second.usage.prompt_tokens + second.usage.completion_tokens

    # Without a session the request's messages are the whole conversation, on a temporary
    # thread; `user` goes to every model call of the run.
    before = len(llm.requests)
    stateless = client.chat.completions.create(
        model="mai-assistant",
        messages=[
            {"role": "user", "content": "I live in Lyon."},
            {"role": "assistant", "content": "Lyon is lovely."},
            {"role": "user", "content": "Where do I live?"},
        ],
        user="end-user-7",
    )
    assert stateless.choices[0].message.content == "You said: Where do I live?"
    assert "I live in Lyon." in str(llm.requests[-1]["messages"])
    assert "Lyon is lovely." in str(llm.requests[-1]["messages"])
    assert "My name is Ada." not in str(llm.requests[-1]["messages"])
    calls = llm.requests[before:]
    assert len(calls) >= 2  # routing and answering
    assert [c.get("user") for c in calls] == ["end-user-7"] * len(calls)
    assert "user" not in llm.requests[before - 1]
    assert _mai(stateless)["temporary"] is True
    assert _mai(stateless)["user"] == "end-user-7"
    assert _mai(stateless)["conversation_id"] not in _conversation_ids(base, token)

    # Streamed, with the usage chunk.
    stream = client.chat.completions.create(
        model="mai-assistant",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Stream this please"},
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: Stream this please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0

    # The agent's own tool, run on the server.
    tool_turn = client.chat.completions.create(
        model="mai-assistant", messages=[{"role": "user", "content": "What is 6*7?"}]
    )
    assert tool_turn.choices[0].message.content == "The result is 42."
    assert _mai(tool_turn)["tool_calls"][0]["name"] == "calculator"

    # Refusals arrive as the SDK's typed errors.
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="mai-assistant",
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        )
    assert refused.value.code == "tools_not_supported"
    assert refused.value.param == "tools"
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.code == "model_not_found"
    wrong_key = openai.OpenAI(base_url=f"{base}/v1", api_key="not-a-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong_key.models.list()


def test_sources_and_approvals_through_the_sdk(mai: tuple[str, OpenAIServer]) -> None:
    base, _ = mai
    token, key = sign_up_with_key(base, "kb@example.com", "openai sdk")
    auth = {"Authorization": f"Bearer {token}"}
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=60)

    # A knowledge question: the answer ends with its Sources, also given in `mai`.
    uploaded = httpx.post(
        f"{base}/api/v1/kb/documents",
        headers=auth,
        files={"file": ("guide.txt", b"A blinking amber light means error ERR-4471: fan failure.")},
        data={"title": "Router guide"},
        timeout=30,
    )
    assert uploaded.status_code == 202, uploaded.text
    document_id = uploaded.json()["id"]
    deadline = time.monotonic() + 90
    while (
        status := httpx.get(
            f"{base}/api/v1/kb/documents/{document_id}", headers=auth, timeout=30
        ).json()["status"]
    ) not in ("ready", "failed"):
        assert time.monotonic() < deadline, f"the document is still {status}"
        time.sleep(0.2)
    assert status == "ready"
    answer = client.chat.completions.create(
        model="mai-assistant",
        messages=[{"role": "user", "content": "What does the amber light with ERR-4471 mean?"}],
    )
    assert answer.choices[0].message.content == KB_ANSWER + "\n\nSources:\n[1] Router guide"
    [citation] = _mai(answer)["citations"]
    assert (citation["number"], citation["document_id"]) == (1, document_id)

    # A pause for approval: the notice says what and where, and ends the completion.
    session = {"X-Session-ID": "minutes"}
    paused = client.chat.completions.create(
        model="mai-assistant",
        messages=[{"role": "user", "content": "Mail the minutes to Ada"}],
        extra_headers=session,
    )
    assert paused.choices[0].finish_reason == "stop"
    assert _mai(paused)["status"] == "awaiting_approval"
    [approval] = _mai(paused)["approvals"]
    notice = paused.choices[0].message.content or ""
    assert "send_email" in notice
    assert f"{base}/api/v1/approvals/{approval['id']}/approve" in notice
    with pytest.raises(openai.ConflictError) as waiting:
        client.chat.completions.create(
            model="mai-assistant",
            messages=[{"role": "user", "content": "Thanks"}],
            extra_headers=session,
        )
    assert waiting.value.code == "approval_pending"

    decided = httpx.post(
        f"{base}/api/v1/approvals/{approval['id']}/approve", json={}, headers=auth, timeout=60
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["answer"] == "I sent the minutes to Ada."
    # The same session goes on, and first gives the answer the approval led to.
    after = client.chat.completions.create(
        model="mai-assistant",
        messages=[{"role": "user", "content": "Thanks"}],
        extra_headers=session,
    )
    assert after.choices[0].message.content == (
        "After your approval: I sent the minutes to Ada.\n\nYou said: Thanks"
    )
    assert _mai(after)["conversation_id"] == _mai(paused)["conversation_id"]


def test_usage_is_the_runs_and_the_usage_events(mai: tuple[str, OpenAIServer]) -> None:
    base, _ = mai
    token, key = sign_up_with_key(base, "meter@example.com", "openai sdk")
    auth = {"Authorization": f"Bearer {token}"}
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=60)

    kept = client.chat.completions.create(
        model="mai-assistant",
        messages=[{"role": "user", "content": "Count these words please"}],
        extra_headers={"X-Session-ID": "metered"},
    )
    assert kept.usage is not None
    run = httpx.get(f"{base}/api/v1/agent/runs/{kept.id}", headers=auth, timeout=30).json()
    assert run["status"] == "success"
    assert (kept.usage.prompt_tokens, kept.usage.completion_tokens) == (
        run["usage"]["input_tokens"],
        run["usage"]["output_tokens"],
    )
    streamed = list(
        client.chat.completions.create(
            model="mai-assistant",
            messages=[{"role": "user", "content": "And these ones too"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed_usage = streamed[-1].usage
    assert streamed_usage is not None

    # Both turns are usage events (the stateless one too, though its thread is gone), with
    # the tokens the completions reported.
    deadline = time.monotonic() + 30
    while True:
        report = httpx.get(f"{base}/api/v1/analytics/usage", headers=auth, timeout=30).json()
        if report["totals"]["turns"] >= 2:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.2)
    totals = report["totals"]
    assert totals["turns"] == totals["completed"] == 2
    assert totals["input_tokens"] == kept.usage.prompt_tokens + streamed_usage.prompt_tokens
    assert (
        totals["output_tokens"] == kept.usage.completion_tokens + streamed_usage.completion_tokens
    )
    assert totals["output_tokens"] > 0

    # The session's conversation shows in /api/v1/agent/conversations with its usage and
    # cost; the stateless one left none.
    listed = httpx.get(f"{base}/api/v1/agent/conversations", headers=auth, timeout=30).json()
    [conversation] = listed["items"]
    assert conversation["id"] == _mai(kept)["conversation_id"]
    assert conversation["usage"]["input_tokens"] == kept.usage.prompt_tokens
    assert conversation["usage"]["output_tokens"] == kept.usage.completion_tokens
    cost = (kept.usage.prompt_tokens * PRICE_IN + kept.usage.completion_tokens * PRICE_OUT) / 1e6
    assert conversation["usage"]["cost_usd"] == pytest.approx(cost)
    assert cost > 0


def test_a_stream_left_early_leaves_no_conversation(mai: tuple[str, OpenAIServer]) -> None:
    base, _ = mai
    token, key = sign_up_with_key(base, "leaver@example.com", "openai sdk")
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=60)
    RELEASE.clear()
    stream = client.chat.completions.create(
        model="mai-assistant",
        messages=[{"role": "user", "content": "Take your time"}],
        stream=True,
    )
    conversation_id = stream.response.headers["X-MAI-Conversation-ID"]
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    stream.close()
    # The run goes on without the client, on its temporary thread...
    assert conversation_id in _conversation_ids(base, token)
    RELEASE.set()
    # ...which is deleted once the run ends.
    deadline = time.monotonic() + 60
    while conversation_id in _conversation_ids(base, token):
        assert time.monotonic() < deadline, "the temporary thread outlived its run"
        time.sleep(0.2)
    run_id = stream.response.headers["X-MAI-Run-ID"]
    report_deadline = time.monotonic() + 30
    while True:
        report = httpx.get(
            f"{base}/api/v1/analytics/usage",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()
        if report["totals"]["turns"] == 1:
            break
        assert time.monotonic() < report_deadline, (run_id, report)
        time.sleep(0.2)
    assert report["totals"]["completed"] == 1
