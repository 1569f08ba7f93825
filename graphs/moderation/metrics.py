"""Prometheus metrics of the moderation stages (on the default registry MAI's /metrics serves)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

STAGE_SECONDS = Histogram(
    "mai_moderation_stage_seconds",
    "Duration of one moderation stage",
    ["stage", "outcome"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
VERDICTS = Counter("mai_moderation_verdicts_total", "Moderation verdicts", ["verdict"])
