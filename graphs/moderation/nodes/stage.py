"""What every moderation stage shares: timing, the error strategy, the report and its metric."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.errors import GraphBubbleUp

from graphs.moderation.context import Context
from graphs.moderation.metrics import STAGE_SECONDS
from graphs.moderation.state import StageReport


class StageFailed(RuntimeError):
    """A stage failed under the fail_fast strategy; the message names the stage and the cause."""


async def run_stage(
    stage: str,
    context: Context,
    work: Callable[[], Awaitable[dict[str, Any]]],
    *,
    partial: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run a stage's work and report it. On failure: raise (fail_fast) or report the error and
    keep `partial` (continue)."""
    started = time.monotonic()
    try:
        update = await work()
    except GraphBubbleUp:
        raise
    except Exception as failure:
        seconds = time.monotonic() - started
        STAGE_SECONDS.labels(stage=stage, outcome="error").observe(seconds)
        message = f"{type(failure).__name__}: {failure}"
        if context.error_strategy == "fail_fast":
            raise StageFailed(f"moderation stage {stage} failed: {message}") from failure
        report: StageReport = {
            "stage": stage,
            "outcome": "error",
            "duration_ms": int(seconds * 1000),
            "error": message,
        }
        return {**(partial or {}), "reports": [report]}
    seconds = time.monotonic() - started
    STAGE_SECONDS.labels(stage=stage, outcome="ok").observe(seconds)
    done: StageReport = {
        "stage": stage,
        "outcome": "ok",
        "duration_ms": int(seconds * 1000),
        "error": None,
    }
    return {**update, "reports": [done]}
