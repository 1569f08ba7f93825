"""The `execute` and `run_step` nodes: run the plan's steps, in parallel where independent.

`execute` is the scheduler's checkpoint: after each round of `run_step` tasks it marks the steps
that can no longer run (a dependency failed) as skipped, and the `next_steps` router (in
`graph.py`) sends every step whose dependencies all succeeded to `run_step` with `Send`. Each
task writes only its own entry of `results`, so a crash, a pause or a cancel in the middle of a
round keeps the finished steps: LangGraph saves a task's writes as soon as it ends, and a resume
runs only the tasks that had not.

Each step's start, retries and end are written to the "custom" stream as `StepEvent`s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from graphs.assistant.state import no_usage
from graphs.planner.context import Context, StepCall, context_of
from graphs.planner.state import PlannerState, StepData, StepResult, StepStatus, StepTask
from graphs.planner.tools import capabilities_of

EVENT_KIND = "plan_step"


class StepEvent(TypedDict):
    """A progress event on the "custom" stream."""

    kind: str
    step_id: str
    agent: str
    status: Literal["started", "retrying", "ok", "error", "timeout", "skipped"]
    attempt: int
    duration_ms: int
    error: str | None


def _event(
    step: StepData,
    status: Literal["started", "retrying", "ok", "error", "timeout", "skipped"],
    *,
    attempt: int = 0,
    duration_ms: int = 0,
    error: str | None = None,
) -> StepEvent:
    return {
        "kind": EVENT_KIND,
        "step_id": step["id"],
        "agent": step["agent"],
        "status": status,
        "attempt": attempt,
        "duration_ms": duration_ms,
        "error": error,
    }


def _result(
    step: StepData, status: StepStatus, *, error: str | None = None, attempts: int = 0
) -> StepResult:
    return {
        "step_id": step["id"],
        "agent": step["agent"],
        "status": status,
        "text": "",
        "citations": [],
        "data": {},
        "error": error,
        "attempts": attempts,
        "duration_ms": 0,
    }


def blocked_steps(state: PlannerState) -> dict[str, StepResult]:
    """Steps not run yet that never can: one of their dependencies did not succeed."""
    results = state.get("results") or {}
    blocked: dict[str, StepResult] = {}
    # Plan order is not dependency order, so repeat until nothing changes.
    changed = True
    while changed:
        changed = False
        for step in state["plan"]["steps"]:
            if step["id"] in results or step["id"] in blocked:
                continue
            done = {**results, **blocked}
            failed = [d for d in step["depends_on"] if d in done and done[d]["status"] != "ok"]
            if failed:
                blocked[step["id"]] = _result(
                    step, "skipped", error=f"not run: step {', '.join(failed)} did not succeed"
                )
                changed = True
    return blocked


def execute(state: PlannerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Record the steps that a failed dependency blocks (unless the policy stops the plan)."""
    context = context_of(runtime)
    results = state.get("results") or {}
    failed = any(result["status"] != "ok" for result in results.values())
    if failed and context.failure_policy == "fail_fast":
        return {}
    blocked = blocked_steps(state)
    steps = {step["id"]: step for step in state["plan"]["steps"]}
    for step_id, result in blocked.items():
        runtime.stream_writer(_event(steps[step_id], "skipped", error=result["error"]))
    return {"results": blocked} if blocked else {}


async def run_step(state: StepTask, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run one step's capability with its timeout, retrying under the "retry" policy."""
    context = context_of(runtime)
    step = state["step"]
    capability = capabilities_of(context).get(step["agent"])
    write = runtime.stream_writer
    allowed = context.max_attempts if context.failure_policy == "retry" else 1
    started = time.monotonic()
    write(_event(step, "started", attempt=1))
    status: StepStatus = "error"
    error: str | None = f"the capability {step['agent']!r} is not available in this run"
    attempt = 0
    for attempt in range(1, allowed + 1):
        if capability is None:
            break
        if attempt > 1:
            write(_event(step, "retrying", attempt=attempt, error=error))
        call = StepCall(step=step, inputs=list(state["inputs"]), context=context)
        try:
            produced = await asyncio.wait_for(capability(call), context.step_timeout_seconds)
        except GraphBubbleUp:
            # An interrupt inside the step (e.g. a tool approval) pauses the whole run.
            raise
        except TimeoutError:
            status, error = "timeout", f"timed out after {context.step_timeout_seconds:g}s"
            continue
        except Exception as failure:
            status, error = "error", f"{type(failure).__name__}: {failure}"
            continue
        duration_ms = int((time.monotonic() - started) * 1000)
        write(_event(step, "ok", attempt=attempt, duration_ms=duration_ms))
        result: StepResult = {
            "step_id": step["id"],
            "agent": step["agent"],
            "status": "ok",
            "text": produced["text"],
            "citations": list(produced["citations"]),
            "data": dict(produced["data"]),
            "error": None,
            "attempts": attempt,
            "duration_ms": duration_ms,
        }
        return {"results": {step["id"]: result}, "usage": produced["usage"]}
    duration_ms = int((time.monotonic() - started) * 1000)
    write(_event(step, status, attempt=attempt, duration_ms=duration_ms, error=error))
    failed = _result(step, status, error=error, attempts=attempt)
    failed["duration_ms"] = duration_ms
    return {"results": {step["id"]: failed}, "usage": no_usage()}
