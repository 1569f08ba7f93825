"""Langfuse tracing of agent runs: span attributes, off by default, and Langfuse outages.

The spans are captured in memory by an OpenTelemetry `InMemorySpanExporter` added to the tracer
provider the app's Langfuse client exports from; the Langfuse exporter itself runs as in
production, against a local stand-in (or a closed port, or a server that never answers).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import uuid
from typing import Any

import pytest
from langfuse import Langfuse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.core.config import Settings
from app.core.tracing import SHUTDOWN_FLUSH_SECONDS
from tests.conftest import Agent, AppFactory, StartAgent
from tests.fake_llm import scripted
from tests.observability.conftest import QUERY, TraceCollector, tool_turn

pytestmark = pytest.mark.usefixtures("backend")

MODEL = "scripted-fake"
# A turn with the scripted model takes well under a second; an export on the request path
# would add at least the exporter's timeout (5 s) against a server that never answers.
PROMPT_SECONDS = 3.0


def langfuse_settings(host: str) -> dict[str, Any]:
    """Tracing settings for one test (the SDK keeps one exporter per public key and process)."""
    return {
        "langfuse_public_key": f"pk-lf-test-{uuid.uuid4().hex[:12]}",
        "langfuse_secret_key": "sk-lf-test",
        "langfuse_host": host,
    }


def capture(agent: Agent) -> InMemorySpanExporter:
    """Collect every span of the app's tracer provider in memory from now on."""
    provider = agent.resources.tracing.provider
    assert provider is not None, "tracing is not enabled"
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def closed_port_url() -> str:
    """A URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def attributes(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes as a plain dict."""
    return dict(span.attributes or {})


def trace_id_of(span: ReadableSpan) -> str:
    """A span's trace id in Langfuse's hex form."""
    return format(span.context.trace_id, "032x")


def roots_of(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> list[ReadableSpan]:
    """The spans whose parent is not among `spans` (a trace's root has a remote parent: the
    trace id is set from the run id)."""
    ids = {span.context.span_id for span in spans}
    return [span for span in spans if span.parent is None or span.parent.span_id not in ids]


async def run_spans(exporter: InMemorySpanExporter, run_id: str | None) -> list[ReadableSpan]:
    """The finished spans of a run (None: of the only run), once its root has ended (just
    after the answer is sent)."""
    trace_id = Langfuse.create_trace_id(seed=run_id) if run_id else None
    for _ in range(200):
        spans = [s for s in exporter.get_finished_spans() if trace_id in (None, trace_id_of(s))]
        if any(span.name == "assistant" for span in roots_of(spans)):
            return spans
        await asyncio.sleep(0.02)
    raise AssertionError(f"the root span of run {run_id} did not end")


async def ask(agent: Agent, message: str = "What is 2+2?", **body: Any) -> dict[str, Any]:
    """One turn through /query."""
    response = await agent.client.post(
        QUERY, json={"message": message, **body}, headers=agent.user.headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_run_spans_carry_user_session_run_graph_and_model(
    trace_collector: TraceCollector, start_agent: StartAgent, app_factory: AppFactory
) -> None:
    settings = langfuse_settings(trace_collector.url)
    agent = await start_agent(scripted(*tool_turn(), *tool_turn("Still 4.")), **settings)
    assert agent.resources.tracing.enabled
    spans = capture(agent)

    first = await ask(agent)
    second = await ask(agent, conversation_id=first["conversation_id"])

    for turn in (first, second):
        trace = await run_spans(spans, turn["run_id"])
        roots = roots_of(trace)
        assert len(roots) == 1
        root = attributes(roots[0])
        assert roots[0].name == "assistant"
        assert root["langfuse.observation.type"] == "agent"
        assert root["langfuse.observation.input"] == "What is 2+2?"
        assert root["langfuse.observation.output"] == turn["answer"]
        # Every span of the run carries the trace attributes, so Langfuse can filter on them.
        for span in trace:
            attrs = attributes(span)
            assert attrs["user.id"] == agent.user.id, span.name
            assert attrs["session.id"] == turn["conversation_id"], span.name
            assert json.loads(attrs["langfuse.trace.metadata.run_id"]) == turn["run_id"]
            assert json.loads(attrs["langfuse.trace.metadata.graph"]) == "assistant"
            assert json.loads(attrs["langfuse.trace.metadata.model"]) == MODEL
            assert set(attrs["langfuse.trace.tags"]) >= {"graph:assistant", f"model:{MODEL}"}
            assert attrs["langfuse.trace.name"] == "assistant"
        # The graph's nodes and the model calls are observations of the run.
        names = {span.name for span in trace}
        assert {"route", "load_context", "call_model", "tools", "synthesize"} <= names
        generations = [
            span
            for span in trace
            if attributes(span).get("langfuse.observation.type") == "generation"
        ]
        assert len(generations) == 3  # route, call_model (tool call), call_model (answer)
        assert all("langfuse.observation.usage_details" in attributes(g) for g in generations)

    # Same conversation, one session; different runs, different traces.
    assert first["conversation_id"] == second["conversation_id"]
    assert first["run_id"] != second["run_id"]

    # The spans also went to Langfuse's OTLP endpoint, with the project's keys (at the latest
    # when the app stops: shutdown flushes the queue).
    await app_factory.stop(agent.app)
    assert trace_collector.received.wait(5), "nothing was exported to Langfuse"
    path, headers = trace_collector.requests[0]
    assert path == "/api/public/otel/v1/traces"
    expected = base64.b64encode(f"{settings['langfuse_public_key']}:sk-lf-test".encode()).decode()
    assert headers["authorization"] == f"Basic {expected}"


async def test_a_failed_run_is_traced_as_an_error(
    trace_collector: TraceCollector, start_agent: StartAgent
) -> None:
    import httpx
    import openai

    failure = openai.APIConnectionError(request=httpx.Request("POST", "http://llm/v1"))
    agent = await start_agent(
        scripted({"route": "direct"}, failure), **langfuse_settings(trace_collector.url)
    )
    spans = capture(agent)
    response = await agent.client.post(QUERY, json={"message": "hi"}, headers=agent.user.headers)
    assert response.status_code == 503
    roots = roots_of(await run_spans(spans, None))
    assert len(roots) == 1
    root = attributes(roots[0])
    assert root["langfuse.observation.level"] == "ERROR"
    assert root["langfuse.observation.status_message"] == "llm_unavailable"
    assert root["user.id"] == agent.user.id


async def test_an_openai_completions_user_is_on_its_trace(
    trace_collector: TraceCollector, start_agent: StartAgent
) -> None:
    agent = await start_agent(
        scripted({"route": "direct"}, "Hello."), **langfuse_settings(trace_collector.url)
    )
    spans = capture(agent)
    response = await agent.client.post(
        "/v1/chat/completions",
        json={
            "model": "mai-assistant",
            "messages": [{"role": "user", "content": "hi"}],
            "user": "end-user-7",
        },
        headers=agent.user.headers,
    )
    assert response.status_code == 200, response.text
    trace = await run_spans(spans, response.json()["id"])
    for span in trace:
        attrs = attributes(span)
        assert json.loads(attrs["langfuse.trace.metadata.end_user"]) == "end-user-7", span.name
        assert attrs["user.id"] == agent.user.id


async def test_tracing_is_off_without_a_public_key(start_agent: StartAgent) -> None:
    agent = await start_agent(scripted(*tool_turn()), langfuse_public_key=None)
    tracing = agent.resources.tracing
    assert not tracing.enabled
    assert tracing.provider is None
    assert tracing.client is None
    turn = await ask(agent)
    assert turn["answer"] == "It is 4."


def test_settings_read_langfuse_variables_without_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-1")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-1")
    monkeypatch.setenv("LANGFUSE_HOST", "http://langfuse:3000/")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.langfuse_public_key == "pk-lf-1"
    assert settings.langfuse_secret_key is not None
    assert settings.langfuse_secret_key.get_secret_value() == "sk-lf-1"
    assert settings.langfuse_host == "http://langfuse:3000"
    assert settings.tracing_enabled
    monkeypatch.delenv("LANGFUSE_SECRET_KEY")
    with pytest.raises(ValueError, match="LANGFUSE_SECRET_KEY must be set"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "")
    assert not Settings(_env_file=None).tracing_enabled  # type: ignore[call-arg]


@pytest.mark.parametrize("outage", ["closed_port", "hanging_server"])
async def test_a_langfuse_outage_neither_slows_nor_fails_turns(
    outage: str,
    hanging_collector: TraceCollector,
    start_agent: StartAgent,
    app_factory: AppFactory,
) -> None:
    host = closed_port_url() if outage == "closed_port" else hanging_collector.url
    agent = await start_agent(
        scripted(*tool_turn(), *tool_turn("Still 4.")), **langfuse_settings(host)
    )
    spans = capture(agent)

    started = time.perf_counter()
    first = await ask(agent)
    assert time.perf_counter() - started < PROMPT_SECONDS
    assert first["answer"] == "It is 4."
    if outage == "hanging_server":
        # The exporter is now stuck on a request that never ends...
        assert hanging_collector.received.wait(15), "no export was attempted"
    # ...and the next turn does not wait for it.
    started = time.perf_counter()
    second = await ask(agent, conversation_id=first["conversation_id"])
    assert time.perf_counter() - started < PROMPT_SECONDS
    assert second["answer"] == "Still 4."
    assert {trace_id_of(span) for span in spans.get_finished_spans()} >= {
        Langfuse.create_trace_id(seed=first["run_id"]),
        Langfuse.create_trace_id(seed=second["run_id"]),
    }
    # Shutdown gives the queued spans a bounded time, then stops.
    started = time.perf_counter()
    await app_factory.stop(agent.app)
    assert time.perf_counter() - started < SHUTDOWN_FLUSH_SECONDS + 3
