"""MAI's Prometheus metrics, each defined once, and the small functions that record them.

Other modules never touch the metric objects: they call the `record_*` / `observe_*` / `set_*`
functions below, which keep label names and values consistent with the dashboards and alerts.

Multiprocess mode: when `PROMETHEUS_MULTIPROC_DIR` is set before `prometheus_client` is imported
(`mai serve --workers N` sets it), every worker writes its samples to files in that directory and
`render_latest()` merges them with `MultiProcessCollector`. Each gauge declares how the merge
combines the workers' values (`multiprocess_mode`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Literal

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format every Prometheus 2.x and 3.x scraper reads.
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4

# Buckets sized for what is measured: graph nodes and LLM calls take up to minutes on local
# models, searches and approvals live on very different scales.
_SECONDS_LONG = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
_SECONDS_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SECONDS_HUMAN = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 86400.0)

RunStatus = Literal["success", "error", "interrupted", "cancelled"]
CallStatus = Literal["ok", "error"]
ToolStatus = Literal["ok", "error", "timeout", "rejected"]
JobStatus = Literal["queued", "succeeded", "failed"]
Decision = Literal["approved", "rejected", "expired"]

HTTP_REQUESTS = Counter(
    "mai_http_requests_total",
    "HTTP requests by route template (not raw path), method and status class (2xx, 4xx, 5xx).",
    ["handler", "method", "status"],
)
HTTP_DURATION = Histogram(
    "mai_http_request_duration_seconds",
    "HTTP request latency by route template and method (streams: until the last byte).",
    ["handler", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
AGENT_RUNS = Counter(
    "mai_agent_runs_total",
    "Agent runs finished, by graph and final status.",
    ["graph", "status"],
)
NODE_DURATION = Histogram(
    "mai_agent_node_duration_seconds",
    "Time spent in one execution of a graph node.",
    ["graph", "node"],
    buckets=_SECONDS_LONG,
)
LLM_CALLS = Counter(
    "mai_llm_calls_total",
    "Calls to the LLM server, by model and outcome (error: connection, timeout or HTTP error).",
    ["model", "status"],
)
LLM_DURATION = Histogram(
    "mai_llm_call_duration_seconds",
    "Duration of one LLM call, first byte sent to last token received.",
    ["model"],
    buckets=_SECONDS_LONG,
)
LLM_TTFT = Histogram(
    "mai_llm_time_to_first_token_seconds",
    "Time from sending a streamed LLM call to receiving its first token.",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0),
)
LLM_TOKENS = Counter(
    "mai_llm_tokens_total",
    "Tokens consumed by LLM calls, by model, direction (input = prompt, output = completion) "
    "and the graph that ran.",
    ["model", "direction", "graph"],
)
LLM_COST = Counter(
    "mai_llm_cost_usd_total",
    "Estimated cost of LLM calls in US dollars, by model and the graph that ran.",
    ["model", "graph"],
)
TOOL_CALLS = Counter(
    "mai_tool_calls_total",
    "Tool executions by tool and outcome.",
    ["tool", "status"],
)
TOOL_DURATION = Histogram(
    "mai_tool_call_duration_seconds",
    "Duration of one tool execution.",
    ["tool"],
    buckets=_SECONDS_LONG,
)
RUN_QUEUE_DEPTH = Gauge(
    "mai_run_queue_depth",
    "Runs waiting for a worker (pending), as last read from the runs table.",
    multiprocess_mode="mostrecent",
)
RUNS_BY_STATUS = Gauge(
    "mai_runs",
    "Runs in the runs table by status, as last read.",
    ["status"],
    multiprocess_mode="mostrecent",
)
RUN_TRANSITIONS = Counter(
    "mai_run_transitions_total",
    "Run status changes made by the run engine, by graph and new status.",
    ["graph", "status"],
)
RUN_LEASE_EXPIRIES = Counter(
    "mai_run_lease_expiries_total",
    "Runs whose worker stopped renewing the lease (crashed or stalled), by what followed.",
    ["outcome"],
)
RUN_RETRIES = Counter(
    "mai_run_retries_total",
    "Runs queued again to be retried, by reason.",
    ["reason"],
)
RUN_CANCELLATIONS = Counter(
    "mai_run_cancellations_total",
    "Runs cancelled, by action (interrupt keeps checkpoints, rollback removes them).",
    ["action"],
)
APPROVALS_PENDING = Gauge(
    "mai_approvals_pending",
    "Tool calls waiting for a human decision (the count last read from the database).",
    multiprocess_mode="mostrecent",
)
APPROVAL_WAIT = Histogram(
    "mai_approval_wait_seconds",
    "Time from an approval request to its decision, by decision.",
    ["decision"],
    buckets=_SECONDS_HUMAN,
)
KB_INGESTION_JOBS = Counter(
    "mai_kb_ingestion_jobs_total",
    "Knowledge-base ingestion jobs by status (queued when accepted, then succeeded or failed).",
    ["status"],
)
KB_CHUNKS_INDEXED = Counter(
    "mai_kb_chunks_indexed_total",
    "Chunks written to the vector store (rate() of it is the ingestion throughput).",
)
KB_SEARCH_DURATION = Histogram(
    "mai_kb_search_duration_seconds",
    "Latency of one knowledge-base search (embedding the query included).",
    buckets=_SECONDS_FAST,
)
KB_CITATION_SUPPORT = Histogram(
    "mai_kb_citation_support_ratio",
    "Per cited answer, the share of its citations whose sentence shares enough words with the "
    "cited passage (a lexical check; low values mean misattributed or invented citations).",
    buckets=(0.0, 0.25, 0.5, 0.75, 0.99, 1.0),
)
MEMORY_OPERATIONS = Counter(
    "mai_memory_operations_total",
    "Long-term memory store operations (the assistant's and the API's), by operation.",
    ["operation"],
)
MemoryOperation = Literal["read", "search", "write", "delete"]
RATE_LIMIT_REJECTIONS = Counter(
    "mai_rate_limit_rejections_total",
    "Requests refused with 429 by a rate limit, by limit scope.",
    ["scope"],
)
CACHE_REQUESTS = Counter(
    "mai_cache_requests_total",
    "Cache lookups by cache name and result (hit or miss).",
    ["cache", "result"],
)
DB_POOL_IN_USE = Gauge(
    "mai_db_pool_connections_in_use",
    "Database connections checked out of the SQLAlchemy pool (summed over live workers).",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "mai_db_pool_size",
    "Configured size of the SQLAlchemy pool (summed over live workers).",
    multiprocess_mode="livesum",
)
ACTIVE_USERS = Gauge(
    "mai_active_users",
    "Users who signed in or renewed a session in the last 30 minutes.",
    multiprocess_mode="mostrecent",
)


def observe_http(handler: str, method: str, status: str, seconds: float) -> None:
    """Record one HTTP request (called by the instrumentator middleware for every route)."""
    HTTP_REQUESTS.labels(handler=handler, method=method, status=status).inc()
    HTTP_DURATION.labels(handler=handler, method=method).observe(max(seconds, 0.0))


def record_run(graph: str, status: RunStatus) -> None:
    """Count one finished agent run (call once per run, when it ends or pauses)."""
    AGENT_RUNS.labels(graph=graph, status=status).inc()


def observe_node(node: str, seconds: float, *, graph: str = "assistant") -> None:
    """Record how long one execution of a graph node took."""
    NODE_DURATION.labels(graph=graph, node=node).observe(max(seconds, 0.0))


def record_llm_call(
    model: str,
    seconds: float,
    *,
    status: CallStatus = "ok",
    time_to_first_token: float | None = None,
) -> None:
    """Record one LLM call: its outcome, duration and (when streamed) time to first token."""
    LLM_CALLS.labels(model=model, status=status).inc()
    LLM_DURATION.labels(model=model).observe(max(seconds, 0.0))
    if time_to_first_token is not None:
        LLM_TTFT.labels(model=model).observe(max(time_to_first_token, 0.0))


def observe_time_to_first_token(model: str, seconds: float) -> None:
    """Record the time to the first streamed token of one LLM call."""
    LLM_TTFT.labels(model=model).observe(max(seconds, 0.0))


def record_tokens(
    model: str, input_tokens: int, output_tokens: int, *, graph: str = "assistant"
) -> None:
    """Add the prompt (input) and completion (output) tokens of one or more calls of a graph."""
    if input_tokens > 0:
        LLM_TOKENS.labels(model=model, direction="input", graph=graph).inc(input_tokens)
    if output_tokens > 0:
        LLM_TOKENS.labels(model=model, direction="output", graph=graph).inc(output_tokens)


def record_cost(model: str, usd: float, *, graph: str = "assistant") -> None:
    """Add the estimated cost in US dollars of a graph's LLM usage."""
    if usd > 0:
        LLM_COST.labels(model=model, graph=graph).inc(usd)


def record_tool_call(tool: str, status: ToolStatus, seconds: float | None = None) -> None:
    """Count one tool execution by outcome, with its duration when it ran."""
    TOOL_CALLS.labels(tool=tool, status=status).inc()
    if seconds is not None:
        TOOL_DURATION.labels(tool=tool).observe(max(seconds, 0.0))


def set_run_queue(pending: int, by_status: dict[str, int]) -> None:
    """Publish the queue depth and the runs per status (read from the runs table)."""
    RUN_QUEUE_DEPTH.set(max(pending, 0))
    for status, count in by_status.items():
        RUNS_BY_STATUS.labels(status=status).set(count)


def record_run_transition(graph: str, status: str) -> None:
    """Count a run status change."""
    RUN_TRANSITIONS.labels(graph=graph, status=status).inc()


def record_lease_expiry(outcome: Literal["requeued", "failed"]) -> None:
    """Count a lost lease and whether the run was queued again or failed for good."""
    RUN_LEASE_EXPIRIES.labels(outcome=outcome).inc()


RunRetryReason = Literal["llm_unavailable", "database_unavailable", "lease_expired", "shutdown"]


def record_run_retry(reason: RunRetryReason) -> None:
    """Count a run put back in the queue."""
    RUN_RETRIES.labels(reason=reason).inc()


def record_run_cancellation(action: str) -> None:
    """Count a cancelled run."""
    RUN_CANCELLATIONS.labels(action=action).inc()


def set_approvals_pending(count: int) -> None:
    """Publish the number of pending approvals (read from the database after every change)."""
    APPROVALS_PENDING.set(max(count, 0))


def observe_approval_wait(seconds: float, decision: Decision) -> None:
    """Record how long an approval waited for its decision."""
    APPROVAL_WAIT.labels(decision=decision).observe(max(seconds, 0.0))


def record_ingestion_job(status: JobStatus) -> None:
    """Count a knowledge-base ingestion job reaching a status."""
    KB_INGESTION_JOBS.labels(status=status).inc()


def record_chunks_indexed(count: int) -> None:
    """Add chunks written to the vector store."""
    if count > 0:
        KB_CHUNKS_INDEXED.inc(count)


def record_citation_support(share: float) -> None:
    """Record the share of supported citations of one answer that cites something."""
    KB_CITATION_SUPPORT.observe(min(max(share, 0.0), 1.0))


def observe_kb_search(seconds: float) -> None:
    """Record the latency of one knowledge-base search."""
    KB_SEARCH_DURATION.observe(max(seconds, 0.0))


def record_memory_operations(operation: MemoryOperation, count: int = 1) -> None:
    """Count long-term memory store operations (reads, searches, writes, deletes)."""
    if count > 0:
        MEMORY_OPERATIONS.labels(operation=operation).inc(count)


def record_rate_limit_rejection(scope: str) -> None:
    """Count one request refused by the rate limit named scope (e.g. "api", "auth")."""
    RATE_LIMIT_REJECTIONS.labels(scope=scope).inc()


def record_cache_lookup(cache: str, hit: bool) -> None:
    """Count one lookup in the named cache as a hit or a miss."""
    CACHE_REQUESTS.labels(cache=cache, result="hit" if hit else "miss").inc()


def set_active_users(count: int) -> None:
    """Publish the number of recently active users."""
    ACTIVE_USERS.set(max(count, 0))


def _pool_counts(engine: AsyncEngine) -> tuple[int, int] | None:
    pool: Any = engine.sync_engine.pool
    checkedout = getattr(pool, "checkedout", None)
    size = getattr(pool, "size", None)
    if not callable(checkedout) or not callable(size):
        return None  # NullPool/StaticPool: nothing pooled to report
    return int(checkedout()), int(size())


def refresh_db_pool(engine: AsyncEngine) -> None:
    """Read the pool's checked-out connections and size into the gauges (done at scrape time)."""
    counts = _pool_counts(engine)
    if counts is None:
        return
    DB_POOL_IN_USE.set(counts[0])
    DB_POOL_SIZE.set(counts[1])


def track_db_pool(engine: AsyncEngine) -> None:
    """Keep the pool gauges current on every checkout and checkin.

    A scrape only reaches one worker; the event hooks keep every other worker's share of the
    multiprocess gauge current too.
    """
    pool = engine.sync_engine.pool
    refresh_db_pool(engine)

    def _checked_out(*_args: Any) -> None:
        refresh_db_pool(engine)

    def _checked_in(*_args: Any) -> None:
        counts = _pool_counts(engine)
        if counts is not None:
            # The pool fires "checkin" before it takes the connection back, so it still counts it.
            DB_POOL_IN_USE.set(max(counts[0] - 1, 0))

    event.listen(pool, "checkout", _checked_out)
    event.listen(pool, "checkin", _checked_in)


def multiprocess_dir() -> str | None:
    """The multiprocess directory in use, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def mark_process_exited() -> None:
    """Drop this worker's live gauges from the multiprocess merge (call at graceful shutdown)."""
    directory = multiprocess_dir()
    if directory:
        _multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


_WORKER_FILE = re.compile(r"_(\d+)\.db$")


class WorkerProcessCollector:
    """CPU, memory and file descriptors of every live worker, labelled by pid.

    In multiprocess mode a scrape reaches one worker, and the client's own process collector
    would report only that one; the workers are found by the files they write to the directory.
    """

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def _live_pids(self) -> list[int]:
        pids = set()
        for path in self.directory.glob("*.db"):
            match = _WORKER_FILE.search(path.name)
            if match and Path("/proc", match.group(1)).exists():
                pids.add(int(match.group(1)))
        return sorted(pids)

    def collect(self) -> Iterator[Metric]:
        """One family per process metric, with one sample per live worker."""
        families: dict[str, Metric] = {}
        for pid in self._live_pids():
            collector = ProcessCollector(pid=functools.partial(int, pid), registry=None)
            for family in collector.collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from families.values()


def render_latest() -> bytes:
    """The Prometheus text exposition of every metric (merged over workers in multiprocess mode)."""
    directory = multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(WorkerProcessCollector(directory))
        return generate_latest(registry)
    return generate_latest(REGISTRY)
