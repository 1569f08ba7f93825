"""The metric helpers record the right series with the right labels (and nothing for no-ops)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from app.core import metrics
from tests.observability.promtext import parse, value


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _delta(name: str, action: Callable[[], None], **labels: str) -> float:
    before = _sample(name, **labels)
    action()
    return _sample(name, **labels) - before


def test_record_run_counts_by_graph_and_status() -> None:
    assert _delta(
        "mai_agent_runs_total",
        lambda: metrics.record_run("assistant", "success"),
        graph="assistant",
        status="success",
    ) == pytest.approx(1)
    assert _delta(
        "mai_agent_runs_total",
        lambda: metrics.record_run("assistant", "error"),
        graph="assistant",
        status="error",
    ) == pytest.approx(1)


def test_observe_node_fills_the_histogram_by_node() -> None:
    labels = {"graph": "assistant", "node": "call_model"}
    count = _sample("mai_agent_node_duration_seconds_count", **labels)
    total = _sample("mai_agent_node_duration_seconds_sum", **labels)
    fast = _sample("mai_agent_node_duration_seconds_bucket", le="0.5", **labels)
    metrics.observe_node("call_model", 0.3)
    metrics.observe_node("call_model", 7.0)
    assert _sample("mai_agent_node_duration_seconds_count", **labels) - count == pytest.approx(2)
    assert _sample("mai_agent_node_duration_seconds_sum", **labels) - total == pytest.approx(7.3)
    assert _sample(
        "mai_agent_node_duration_seconds_bucket", le="0.5", **labels
    ) - fast == pytest.approx(1)


def test_llm_call_duration_errors_and_time_to_first_token() -> None:
    model = "helper-test-model"
    metrics.record_llm_call(model, 2.0, time_to_first_token=0.4)
    metrics.record_llm_call(model, 0.1, status="error")
    metrics.observe_time_to_first_token(model, 0.2)
    assert _sample("mai_llm_calls_total", model=model, status="ok") == 1
    assert _sample("mai_llm_calls_total", model=model, status="error") == 1
    assert _sample("mai_llm_call_duration_seconds_count", model=model) == 2
    assert _sample("mai_llm_call_duration_seconds_sum", model=model) == pytest.approx(2.1)
    assert _sample("mai_llm_time_to_first_token_seconds_count", model=model) == 2
    assert _sample("mai_llm_time_to_first_token_seconds_sum", model=model) == pytest.approx(0.6)


def test_tokens_by_model_and_direction_and_cost() -> None:
    model = "helper-token-model"
    metrics.record_tokens(model, 120, 30)
    metrics.record_tokens(model, 5, 0)
    metrics.record_cost(model, 0.0125)
    metrics.record_cost(model, 0.0)
    assert _sample("mai_llm_tokens_total", model=model, direction="input", graph="assistant") == 125
    assert _sample("mai_llm_tokens_total", model=model, direction="output", graph="assistant") == 30
    assert _sample("mai_llm_cost_usd_total", model=model, graph="assistant") == pytest.approx(
        0.0125
    )


def test_tokens_and_cost_carry_the_graph() -> None:
    model = "helper-graph-model"
    metrics.record_tokens(model, 11, 4, graph="planner")
    metrics.record_cost(model, 0.5, graph="planner")
    assert _sample("mai_llm_tokens_total", model=model, direction="input", graph="planner") == 11
    assert _sample("mai_llm_tokens_total", model=model, direction="output", graph="planner") == 4
    assert _sample("mai_llm_cost_usd_total", model=model, graph="planner") == pytest.approx(0.5)
    assert _sample("mai_llm_cost_usd_total", model=model, graph="assistant") == 0


def test_tool_calls_by_tool_and_status() -> None:
    metrics.record_tool_call("helper_tool", "ok", 0.5)
    metrics.record_tool_call("helper_tool", "timeout", 30.0)
    metrics.record_tool_call("helper_tool", "rejected")
    assert _sample("mai_tool_calls_total", tool="helper_tool", status="ok") == 1
    assert _sample("mai_tool_calls_total", tool="helper_tool", status="timeout") == 1
    assert _sample("mai_tool_calls_total", tool="helper_tool", status="rejected") == 1
    # A rejected call never ran: no duration for it.
    assert _sample("mai_tool_call_duration_seconds_count", tool="helper_tool") == 2


def test_approvals_pending_gauge_and_wait_histogram() -> None:
    metrics.set_approvals_pending(3)
    assert _sample("mai_approvals_pending") == 3
    metrics.set_approvals_pending(0)
    assert _sample("mai_approvals_pending") == 0
    assert _delta(
        "mai_approval_wait_seconds_count",
        lambda: metrics.observe_approval_wait(42.0, "approved"),
        decision="approved",
    ) == pytest.approx(1)


def test_ingestion_jobs_chunks_and_search_latency() -> None:
    assert _delta(
        "mai_kb_ingestion_jobs_total",
        lambda: metrics.record_ingestion_job("failed"),
        status="failed",
    ) == pytest.approx(1)
    assert _delta(
        "mai_kb_chunks_indexed_total", lambda: metrics.record_chunks_indexed(17)
    ) == pytest.approx(17)
    assert _delta(
        "mai_kb_search_duration_seconds_count", lambda: metrics.observe_kb_search(0.03)
    ) == pytest.approx(1)


def test_rate_limit_rejections_and_cache_lookups() -> None:
    assert _delta(
        "mai_rate_limit_rejections_total",
        lambda: metrics.record_rate_limit_rejection("auth"),
        scope="auth",
    ) == pytest.approx(1)
    assert _delta(
        "mai_cache_requests_total",
        lambda: metrics.record_cache_lookup("analytics", hit=True),
        cache="analytics",
        result="hit",
    ) == pytest.approx(1)
    assert _delta(
        "mai_cache_requests_total",
        lambda: metrics.record_cache_lookup("analytics", hit=False),
        cache="analytics",
        result="miss",
    ) == pytest.approx(1)


def test_rendered_text_carries_the_labelled_series() -> None:
    metrics.record_tokens("render-model", 7, 3)
    samples = parse(metrics.render_latest().decode())
    assert (
        value(
            samples,
            "mai_llm_tokens_total",
            model="render-model",
            direction="input",
            graph="assistant",
        )
        == 7
    )
    assert (
        value(
            samples,
            "mai_llm_tokens_total",
            model="render-model",
            direction="output",
            graph="assistant",
        )
        == 3
    )
