"""Agent-run metrics: a LangChain callback for nodes and model calls, a run hook for the outcome.

`GraphMetricsHandler` is passed in the graph's config for each run: it times every node (the
callbacks LangGraph fires for a node carry `metadata["langgraph_node"]` equal to the run's name),
every chat-model call (duration, time to first streamed token, outcome), and counts the tool runs
each execution of the tools node adds to the state (so a run paused for approval and resumed
counts each tool execution once).

`record_run_outcome` is a run-registry hook: when a turn ends (or pauses for approval) it counts
the run by status and its tokens by model and direction (a resumed run reports only the tokens
spent after the pause), each labelled with the graph that ran. Cost is counted by the usage
recorder (`app.services.analytics`), which prices the same tokens.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, Final, get_args

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from app.core import metrics
from app.core.runs import RunOutcome

DEFAULT_GRAPH: Final = "assistant"

# Run statuses (app.models.RunStatus values and the approvals pause) as metric statuses.
_RUN_STATUS: Final[dict[str, metrics.RunStatus]] = {
    "completed": "success",
    "failed": "error",
    "awaiting_approval": "interrupted",
    "interrupted_for_approval": "interrupted",
    "interrupted": "cancelled",
    "cancelled": "cancelled",
}
_TOOL_STATUSES: Final = frozenset(get_args(metrics.ToolStatus))


def run_status_label(status: str) -> metrics.RunStatus:
    """The `status` label of `mai_agent_runs_total` for a stored run status."""
    return _RUN_STATUS.get(status, "error")


class GraphMetricsHandler(BaseCallbackHandler):
    """Times graph nodes and chat-model calls of one run into the Prometheus histograms.

    Runs inline on the event loop (no thread hop per token); every method only reads a clock
    and updates a dict, so it costs microseconds.
    """

    run_inline = True

    def __init__(
        self, model: str | None, *, graph: str = DEFAULT_GRAPH, tools_node: str = "tools"
    ) -> None:
        self.model = model or "unknown"
        self.graph = graph
        self.tools_node = tools_node
        self._nodes: dict[uuid.UUID, tuple[str, float]] = {}
        # Tool runs already in the state when a tools-node execution started.
        self._tool_runs_before: dict[uuid.UUID, int] = {}
        self._calls: dict[uuid.UUID, float] = {}
        self._first_token: dict[uuid.UUID, float] = {}

    # --- nodes ------------------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: uuid.UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start timing a node (runs nested inside a node share its metadata, not its name)."""
        node = (metadata or {}).get("langgraph_node")
        if node is not None and kwargs.get("name") == node:
            self._nodes[run_id] = (str(node), time.perf_counter())
            if node == self.tools_node:
                previous = inputs.get("tool_runs") if isinstance(inputs, Mapping) else None
                self._tool_runs_before[run_id] = len(previous or [])

    def on_chain_end(self, outputs: Any, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        """Record a node's duration; for the tools node, count the tool runs it added."""
        self._end_node(run_id)
        before = self._tool_runs_before.pop(run_id, None)
        if before is not None and isinstance(outputs, Mapping):
            record_tool_runs(list(outputs.get("tool_runs") or [])[before:])

    def on_chain_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        """Record a node's duration when it raised (an interrupt for approval included)."""
        self._end_node(run_id)
        self._tool_runs_before.pop(run_id, None)

    def _end_node(self, run_id: uuid.UUID) -> None:
        started = self._nodes.pop(run_id, None)
        if started is not None:
            metrics.observe_node(started[0], time.perf_counter() - started[1], graph=self.graph)

    # --- model calls ------------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: uuid.UUID,
        **kwargs: Any,
    ) -> None:
        """Start timing a model call."""
        self._calls[run_id] = time.perf_counter()

    def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], *, run_id: uuid.UUID, **kwargs: Any
    ) -> None:
        """Start timing a completion-model call."""
        self._calls[run_id] = time.perf_counter()

    def on_llm_new_token(
        self, token: str | list[str | dict[str, Any]], *, run_id: uuid.UUID, **kwargs: Any
    ) -> None:
        """Note when the first streamed token of a call arrived."""
        if run_id in self._calls and run_id not in self._first_token:
            self._first_token[run_id] = time.perf_counter()

    def on_llm_end(self, response: LLMResult, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        """Record a finished call: duration and time to first token (when it streamed)."""
        self._end_call(run_id, "ok")

    def on_llm_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        """Record a failed call (connection, timeout or HTTP error from the LLM server)."""
        self._end_call(run_id, "error")

    def _end_call(self, run_id: uuid.UUID, status: metrics.CallStatus) -> None:
        started = self._calls.pop(run_id, None)
        first = self._first_token.pop(run_id, None)
        if started is None:
            return
        metrics.record_llm_call(
            self.model,
            time.perf_counter() - started,
            status=status,
            time_to_first_token=None if first is None else first - started,
        )


def _seconds(duration_ms: Any) -> float | None:
    if isinstance(duration_ms, int | float) and not isinstance(duration_ms, bool):
        return float(duration_ms) / 1000
    return None


def record_tool_runs(tool_runs: Any) -> None:
    """Count the tool executions of a turn (ToolRun dicts) by tool and status, with durations."""
    for run in tool_runs or []:
        if not isinstance(run, Mapping) or not run.get("name"):
            continue
        status = str(run.get("status") or "ok")
        metrics.record_tool_call(
            str(run["name"]),
            status if status in _TOOL_STATUSES else "error",  # type: ignore[arg-type]
            _seconds(run.get("duration_ms")),
        )


async def record_run_outcome(outcome: RunOutcome) -> None:
    """Run hook: count the finished (or paused) turn and its tokens."""
    metrics.record_run(outcome.graph_id, run_status_label(outcome.status))
    metrics.record_tokens(
        outcome.model or "unknown",
        outcome.input_tokens,
        outcome.output_tokens,
        graph=outcome.graph_id,
    )
