"""Response bodies of /analytics."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class UsageSumsOut(BaseModel):
    """Counts and sums over a set of events (tokens and turns are agent turns)."""

    turns: int
    completed: int
    failed: int
    awaiting_approval: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    kb_uploads: int
    kb_searches: int


class UsageBucketOut(UsageSumsOut):
    """Sums over one day, ISO week or month: [start, end) in UTC."""

    start: datetime
    end: datetime


class ModelUsageOut(BaseModel):
    """Agent turns on one model."""

    model: str | None
    turns: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    avg_latency_ms: float | None


class GraphUsageOut(BaseModel):
    """Agent turns of one graph (langgraph.json id)."""

    graph_id: str | None
    turns: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    avg_latency_ms: float | None


class BudgetOut(BaseModel):
    """The daily token budget (UTC day); daily_tokens and remaining are null without a budget."""

    daily_tokens: int | None
    used_today: int
    remaining: int | None
    resets_at: datetime


class UsageReportOut(BaseModel):
    """A user's usage over a range, bucketed, with today's budget."""

    model_config = ConfigDict(populate_by_name=True)

    user_id: uuid.UUID
    from_: datetime = Field(alias="from")
    to: datetime
    granularity: Literal["day", "week", "month"]
    totals: UsageSumsOut
    buckets: list[UsageBucketOut]
    models: list[ModelUsageOut]
    graph: str | None = Field(default=None, description="The graph the report covers (?graph=)")
    graphs: list[GraphUsageOut] = Field(default_factory=list, description="Agent turns by graph")
    budget: BudgetOut


class UserUsageReportOut(UsageReportOut):
    """A user's usage as an admin sees it."""

    email: str


class PercentilesOut(BaseModel):
    """Nearest-rank percentiles in milliseconds (null without data)."""

    p50: int | None
    p95: int | None


class ToolUsageOut(BaseModel):
    """Calls of one tool by status (ok, error, timeout, rejected)."""

    name: str
    calls: int
    errors: int = Field(description="Calls that failed or timed out")
    rejected: int = Field(description="Calls a person rejected (or let expire): not errors")
    statuses: dict[str, int]


class SystemReportOut(BaseModel):
    """Usage of the whole service over a range (admin)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    totals: UsageSumsOut
    active_users: int
    error_rate: float = Field(description="Failed turns / finished turns")
    latency_ms: PercentilesOut = Field(description="Of completed turns")
    ttft_ms: PercentilesOut = Field(description="Time to first token of completed streams")
    approval_wait_ms: PercentilesOut = Field(
        description="Of completed turns that paused: from each pause to its decision, summed"
    )
    models: list[ModelUsageOut]
    graph: str | None = Field(default=None, description="The graph the report covers (?graph=)")
    graphs: list[GraphUsageOut] = Field(default_factory=list, description="Agent turns by graph")
    tools: list[ToolUsageOut]
