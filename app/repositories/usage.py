"""SQL for usage events: inserts, totals, time buckets, breakdowns and latency percentiles."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, String, case, func, select, true, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import UsageEvent, UsageKind, UsageStatus

Granularity = Literal["day", "week", "month"]


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Which events an aggregate covers: [start, end), optionally one user and one graph (its
    agent turns and memory steps only)."""

    start: datetime
    end: datetime
    user_id: uuid.UUID | None = None
    graph_id: str | None = None


@dataclass(frozen=True, slots=True)
class UsageSums:
    """Counts and sums over a set of events."""

    turns: int = 0
    completed: int = 0
    failed: int = 0
    awaiting_approval: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    kb_uploads: int = 0
    kb_searches: int = 0


@dataclass(frozen=True, slots=True)
class ModelSums:
    """Agent-turn sums for one model."""

    model: str | None
    turns: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    avg_latency_ms: float | None


@dataclass(frozen=True, slots=True)
class GraphSums:
    """Agent-turn sums for one graph."""

    graph_id: str | None
    turns: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    avg_latency_ms: float | None


def bucket_expression(dialect: str, column: Any, granularity: Granularity) -> ColumnElement[str]:
    """SQL for the first UTC day ('YYYY-MM-DD') of the day, ISO week or month of a timestamp."""
    if dialect == "postgresql":
        moment = func.timezone("UTC", column)
        return func.to_char(func.date_trunc(granularity, moment), "YYYY-MM-DD")
    # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text.
    if granularity == "day":
        expression = func.strftime("%Y-%m-%d", column)
    elif granularity == "week":  # ISO weeks start on Monday
        expression = func.date(column, "weekday 0", "-6 days")
    else:
        expression = func.strftime("%Y-%m-01", column)
    return type_coerce(expression, String)


_IS_TURN = UsageEvent.kind == UsageKind.agent_turn.value
# Events whose model tokens count in usage and budgets: turns and their memory steps.
_USES_TOKENS = UsageEvent.kind.in_([UsageKind.agent_turn.value, UsageKind.memory.value])


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _sum_if(condition: ColumnElement[bool], column: Any) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, column), else_=0)), 0)


def _sum_columns() -> tuple[ColumnElement[Any], ...]:
    return (
        _count_if(_IS_TURN).label("turns"),
        _count_if(_IS_TURN & (UsageEvent.status == UsageStatus.completed.value)).label("completed"),
        _count_if(_IS_TURN & (UsageEvent.status == UsageStatus.failed.value)).label("failed"),
        _count_if(_IS_TURN & (UsageEvent.status == UsageStatus.awaiting_approval.value)).label(
            "awaiting_approval"
        ),
        _sum_if(_USES_TOKENS, UsageEvent.input_tokens).label("input_tokens"),
        _sum_if(_USES_TOKENS, UsageEvent.output_tokens).label("output_tokens"),
        func.coalesce(func.sum(UsageEvent.cost_usd), 0.0).label("cost_usd"),
        _count_if(UsageEvent.kind == UsageKind.kb_upload.value).label("kb_uploads"),
        _count_if(UsageEvent.kind == UsageKind.kb_search.value).label("kb_searches"),
    )


def _sums(row: Any) -> UsageSums:
    return UsageSums(
        turns=int(row.turns or 0),
        completed=int(row.completed or 0),
        failed=int(row.failed or 0),
        awaiting_approval=int(row.awaiting_approval or 0),
        input_tokens=int(row.input_tokens or 0),
        output_tokens=int(row.output_tokens or 0),
        cost_usd=float(row.cost_usd or 0.0),
        kb_uploads=int(row.kb_uploads or 0),
        kb_searches=int(row.kb_searches or 0),
    )


class UsageRepository:
    """Reads and writes usage events within one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def _where(self, query: Select[Any], scope: UsageFilter) -> Select[Any]:
        query = query.where(UsageEvent.created_at >= scope.start, UsageEvent.created_at < scope.end)
        if scope.user_id is not None:
            query = query.where(UsageEvent.user_id == scope.user_id)
        if scope.graph_id is not None:
            query = query.where(UsageEvent.graph_id == scope.graph_id)
        return query

    async def add(self, event: UsageEvent) -> UsageEvent:
        """Insert an event and flush."""
        self.session.add(event)
        await self.session.flush()
        return event

    async def turn_tokens(self, user_id: uuid.UUID, start: datetime, end: datetime) -> int:
        """Input plus output tokens of a user's agent turns (memory steps too) in [start, end)."""
        query = self._where(
            select(func.coalesce(func.sum(UsageEvent.input_tokens + UsageEvent.output_tokens), 0)),
            UsageFilter(start, end, user_id),
        ).where(_USES_TOKENS)
        return int(await self.session.scalar(query) or 0)

    async def totals(self, scope: UsageFilter) -> UsageSums:
        """Counts and sums over the scope."""
        row = (await self.session.execute(self._where(select(*_sum_columns()), scope))).one()
        return _sums(row)

    async def buckets(
        self, scope: UsageFilter, granularity: Granularity
    ) -> list[tuple[date, UsageSums]]:
        """Sums per day, ISO week (Monday) or month (UTC), oldest first; empty buckets omitted."""
        bucket = bucket_expression(self._dialect, UsageEvent.created_at, granularity).label(
            "bucket"
        )
        query = (
            self._where(select(bucket, *_sum_columns()), scope).group_by(bucket).order_by(bucket)
        )
        rows = (await self.session.execute(query)).all()
        return [(date.fromisoformat(str(row.bucket)[:10]), _sums(row)) for row in rows]

    def _turns_by(self, scope: UsageFilter, column: Any) -> Select[Any]:
        """Agent-turn sums grouped by one column, most used first."""
        turns = func.count().label("turns")
        return (
            self._where(
                select(
                    column.label("key"),
                    turns,
                    _count_if(UsageEvent.status == UsageStatus.failed.value).label("failed"),
                    func.coalesce(func.sum(UsageEvent.input_tokens), 0).label("input_tokens"),
                    func.coalesce(func.sum(UsageEvent.output_tokens), 0).label("output_tokens"),
                    func.coalesce(func.sum(UsageEvent.cost_usd), 0.0).label("cost_usd"),
                    func.avg(UsageEvent.latency_ms).label("avg_latency_ms"),
                ),
                scope,
            )
            .where(_IS_TURN)
            .group_by(column)
            .order_by(turns.desc(), column)
        )

    async def by_graph(self, scope: UsageFilter) -> list[GraphSums]:
        """Agent-turn sums per graph, most used first."""
        rows = (await self.session.execute(self._turns_by(scope, UsageEvent.graph_id))).all()
        return [
            GraphSums(
                graph_id=row.key,
                turns=int(row.turns),
                failed=int(row.failed),
                input_tokens=int(row.input_tokens),
                output_tokens=int(row.output_tokens),
                cost_usd=float(row.cost_usd),
                avg_latency_ms=None if row.avg_latency_ms is None else float(row.avg_latency_ms),
            )
            for row in rows
        ]

    async def by_model(self, scope: UsageFilter) -> list[ModelSums]:
        """Agent-turn sums per model, most used first."""
        rows = (await self.session.execute(self._turns_by(scope, UsageEvent.model))).all()
        return [
            ModelSums(
                model=row.key,
                turns=int(row.turns),
                failed=int(row.failed),
                input_tokens=int(row.input_tokens),
                output_tokens=int(row.output_tokens),
                cost_usd=float(row.cost_usd),
                avg_latency_ms=None if row.avg_latency_ms is None else float(row.avg_latency_ms),
            )
            for row in rows
        ]

    async def tool_counts(self, scope: UsageFilter) -> list[tuple[str, str, int]]:
        """(tool name, status, calls) over the agent turns in the scope, unnested in SQL."""
        name: ColumnElement[Any]
        status: ColumnElement[Any]
        if self._dialect == "postgresql":
            element = func.json_array_elements(UsageEvent.tools).table_valued("value").alias("t")
            name = element.c.value.op("->>")("name")
            status = element.c.value.op("->>")("status")
        else:
            element = func.json_each(UsageEvent.tools).table_valued("value").alias("t")
            name = func.json_extract(element.c.value, "$.name")
            status = func.json_extract(element.c.value, "$.status")
        calls = func.count().label("calls")
        query = (
            self._where(
                # A function over the row's column in FROM: implicitly lateral in both dialects.
                select(name.label("name"), status.label("status"), calls)
                .select_from(UsageEvent)
                .join(element, true()),
                scope,
            )
            .where(_IS_TURN)
            .group_by(name, status)
        )
        rows = (await self.session.execute(query)).all()
        return [(str(row[0] or "unknown"), str(row[1] or "ok"), int(row[2])) for row in rows]

    async def active_users(self, scope: UsageFilter) -> int:
        """Distinct users with at least one event in the scope."""
        query = self._where(select(func.count(func.distinct(UsageEvent.user_id))), scope)
        return int(await self.session.scalar(query) or 0)

    async def percentiles(
        self, scope: UsageFilter, column_name: Literal["latency_ms", "ttft_ms"], qs: Sequence[float]
    ) -> dict[float, int | None]:
        """Nearest-rank percentiles of completed turns' latency or time to first token."""
        column = getattr(UsageEvent, column_name)
        base = (
            self._where(select(column), scope)
            .where(_IS_TURN, UsageEvent.status == UsageStatus.completed.value)
            .where(column.is_not(None))
        )
        if self._dialect == "postgresql":
            # percentile_disc is the nearest-rank percentile, computed in one pass.
            row = (
                await self.session.execute(
                    self._where(
                        select(*(func.percentile_disc(q).within_group(column.asc()) for q in qs)),
                        scope,
                    )
                    .where(_IS_TURN, UsageEvent.status == UsageStatus.completed.value)
                    .where(column.is_not(None))
                )
            ).one()
            return {q: None if v is None else int(v) for q, v in zip(qs, row, strict=True)}
        values = list((await self.session.scalars(base.order_by(column))).all())
        result: dict[float, int | None] = {}
        for q in qs:
            result[q] = int(values[max(1, math.ceil(q * len(values))) - 1]) if values else None
        return result
