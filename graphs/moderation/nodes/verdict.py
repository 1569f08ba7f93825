"""The `verdict` node: allow, review or block, by the thresholds, with the reasons."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graphs.moderation.context import Context, context_of
from graphs.moderation.metrics import VERDICTS
from graphs.moderation.state import ModerationState, Verdict


def decide(
    scores: dict[str, float], failed: list[str], context: Context
) -> tuple[Verdict, list[str]]:
    """The verdict and its reasons: the worst score against the thresholds; a failed stage
    means a person has to look (at least "review")."""
    reasons: list[str] = []
    verdict: Verdict = "allow"
    blocking = {name: s for name, s in scores.items() if s >= context.block_threshold}
    review = {name: s for name, s in scores.items() if context.review_threshold <= s}
    if blocking:
        verdict = "block"
        reasons += [
            f"{name} {s:.2f} >= block threshold {context.block_threshold:.2f}"
            for name, s in sorted(blocking.items())
        ]
    elif review:
        verdict = "review"
        reasons += [
            f"{name} {s:.2f} >= review threshold {context.review_threshold:.2f}"
            for name, s in sorted(review.items())
        ]
    for stage in failed:
        reasons.append(f"the {stage} stage failed, so the text was not fully checked")
        if verdict == "allow":
            verdict = "review"
    return verdict, reasons


def verdict(state: ModerationState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Decide once every selected stage has finished (the node is deferred)."""
    context = context_of(runtime)
    failed = [r["stage"] for r in state.get("reports", []) if r["outcome"] == "error"]
    chosen, reasons = decide(state.get("toxicity") or {}, failed, context)
    VERDICTS.labels(verdict=chosen).inc()
    return {"verdict": chosen, "reasons": reasons}
