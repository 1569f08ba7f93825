"""The OpenAI-compatible API as its users meet it: the official `openai` SDK against a real
`mai serve` (embedded SQLite, the default, and PostgreSQL + Redis), with a local
OpenAI-compatible server as the LLM.

It runs the README's snippet as written, then lists models, completes plain and streamed,
continues a session with `X-Session-ID`, runs a calculator turn, passes sampling settings to
the model, and checks that refusals arrive as the SDK's typed errors.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.live_server import database_env, mai_serve
from tests.observability.openai_server import OpenAIServer

__all__ = ["database_env"]

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def respond(body: dict[str, Any]) -> str | dict[str, Any]:
    """The test model: the calculator for arithmetic, an echo of what it was told otherwise."""
    messages = body.get("messages", [])
    if any(m.get("role") == "tool" for m in messages):
        result = next(m for m in reversed(messages) if m.get("role") == "tool")["content"]
        return f"The result is {result}."
    last = str(messages[-1].get("content") or "")
    if "6*7" in last:
        return {"tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}}}
    return f"You said: {last}"


@pytest.fixture
def mai(tmp_path: Path, database_env: dict[str, str]) -> Iterator[tuple[str, OpenAIServer]]:
    """A running `mai serve` on a free port (its base URL) and its test LLM."""
    llm = OpenAIServer(structured={"route": "tools"}, respond=respond)
    # Session continuity is what is measured here: long-term memory would carry the name into
    # stateless requests too (it has tests of its own in tests/memory).
    try:
        with mai_serve(
            tmp_path, llm.base_url, {"MAI_MEMORY_ENABLED": "false", **database_env}
        ) as base:
            yield base, llm
    finally:
        llm.close()


def _token(base: str, email: str) -> str:
    signup = httpx.post(
        f"{base}/api/v1/auth/register",
        json={"email": email, "password": "correct-horse-1"},
        timeout=30,
    )
    assert signup.status_code == 201, signup.text
    return str(signup.json()["access_token"])


def _readme_snippet() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## OpenAI-compatible API", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the README's OpenAI section has no python snippet"
    return match.group(1)


def test_the_openai_sdk_drives_mai(mai: tuple[str, OpenAIServer]) -> None:
    base, llm = mai
    token = _token(base, "sdk@example.com")

    # The README's snippet, as written, run as a user would run it.
    snippet = subprocess.run(
        [sys.executable, "-c", _readme_snippet()],
        env={**os.environ, "MAI_URL": base, "MAI_TOKEN": token},
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

    client = openai.OpenAI(base_url=f"{base}/v1", api_key=token, max_retries=0, timeout=60)
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
    conversation_id = second.model_extra["mai"]["conversation_id"]  # type: ignore[index]
    listed = httpx.get(
        f"{base}/api/v1/agent/conversations",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert conversation_id in [c["id"] for c in listed["items"]]
    assert second.usage is not None
    assert second.usage.prompt_tokens > 0
    assert second.usage.total_tokens == second.usage.prompt_tokens + second.usage.completion_tokens

    # Without a session the request's messages are the whole conversation.
    stateless = client.chat.completions.create(
        model="mai-assistant",
        messages=[
            {"role": "user", "content": "I live in Lyon."},
            {"role": "assistant", "content": "Lyon is lovely."},
            {"role": "user", "content": "Where do I live?"},
        ],
    )
    assert stateless.choices[0].message.content == "You said: Where do I live?"
    assert "I live in Lyon." in str(llm.requests[-1]["messages"])
    assert "Lyon is lovely." in str(llm.requests[-1]["messages"])
    assert "My name is Ada." not in str(llm.requests[-1]["messages"])

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
    assert tool_turn.model_extra["mai"]["tool_calls"][0]["name"] == "calculator"  # type: ignore[index]

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
