"""SQL for usage events: inserts, totals, time buckets, breakdowns and latency percentiles.

Events older than MAI_USAGE_RETENTION_DAYS live on only as daily aggregates (`usage_daily`):
counts, tokens and cost read both, so totals over long ranges stay right after pruning. A
rolled-up day counts when its midnight falls in the range. Latency, tool and approval-wait
figures need the events themselves and cover only the days still held as events.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    case,
    func,
    select,
    true,
    type_coerce,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Approval, UsageDaily, UsageEvent, UsageKind, UsageStatus

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

    def __add__(self, other: UsageSums) -> UsageSums:
        return UsageSums(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


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


_DAILY_TURN = UsageDaily.kind == UsageKind.agent_turn.value
_DAILY_USES_TOKENS = UsageDaily.kind.in_([UsageKind.agent_turn.value, UsageKind.memory.value])


def _events_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, UsageDaily.events), else_=0)), 0)


def _daily_sum_columns() -> tuple[ColumnElement[Any], ...]:
    """The same sums as `_sum_columns`, over daily aggregates (each row counts `events`)."""
    status = UsageDaily.status
    return (
        _events_if(_DAILY_TURN).label("turns"),
        _events_if(_DAILY_TURN & (status == UsageStatus.completed.value)).label("completed"),
        _events_if(_DAILY_TURN & (status == UsageStatus.failed.value)).label("failed"),
        _events_if(_DAILY_TURN & (status == UsageStatus.awaiting_approval.value)).label(
            "awaiting_approval"
        ),
        func.coalesce(
            func.sum(case((_DAILY_USES_TOKENS, UsageDaily.input_tokens), else_=0)), 0
        ).label("input_tokens"),
        func.coalesce(
            func.sum(case((_DAILY_USES_TOKENS, UsageDaily.output_tokens), else_=0)), 0
        ).label("output_tokens"),
        func.coalesce(func.sum(UsageDaily.cost_usd), 0.0).label("cost_usd"),
        _events_if(UsageDaily.kind == UsageKind.kb_upload.value).label("kb_uploads"),
        _events_if(UsageDaily.kind == UsageKind.kb_search.value).label("kb_searches"),
    )


def _first_midnight(moment: datetime) -> date:
    """The first UTC day whose midnight is at or after `moment`."""
    moment = moment.astimezone(UTC)
    day = moment.date()
    return day if moment.time() == time() else day + timedelta(days=1)


def _whole_days(start: datetime, end: datetime) -> tuple[str, str]:
    """The rolled-up days ('YYYY-MM-DD', first included, last excluded) whose midnight is in
    [start, end)."""
    return _first_midnight(start).isoformat(), _first_midnight(end).isoformat()


def _bucket_of(day: date, granularity: Granularity) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


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


@dataclass(frozen=True, slots=True)
class ConversationSums:
    """Tokens and cost of one conversation's turns (their memory steps too)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


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

    def _where_daily(self, query: Select[Any], scope: UsageFilter) -> Select[Any]:
        first, last = _whole_days(scope.start, scope.end)
        query = query.where(UsageDaily.day >= first, UsageDaily.day < last)
        if scope.user_id is not None:
            query = query.where(UsageDaily.user_id == scope.user_id)
        return query

    async def turn_of_run(self, run_id: str) -> UsageEvent | None:
        """The agent-turn event already recorded for a run (a turn that paused), if any."""
        query = (
            select(UsageEvent)
            .where(UsageEvent.run_id == run_id, _IS_TURN)
            .order_by(UsageEvent.created_at)
            .limit(1)
        )
        return (await self.session.scalars(query)).first()

    async def approval_wait_ms(self, run_id: uuid.UUID) -> int | None:
        """Milliseconds a run waited for people: per pause, from its request to its last
        decision, summed over the decided pauses; None when no pause was decided."""
        query = (
            select(func.min(Approval.requested_at), func.max(Approval.decided_at))
            .where(Approval.run_id == run_id)
            .group_by(Approval.interrupt_id)
            .having(func.count(Approval.decided_at) == func.count())
        )
        waits = [
            (decided - requested).total_seconds() * 1000
            for requested, decided in (await self.session.execute(query)).all()
            if requested is not None and decided is not None
        ]
        return round(sum(waits)) if waits else None

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
        daily = self._where_daily(
            select(func.coalesce(func.sum(UsageDaily.input_tokens + UsageDaily.output_tokens), 0)),
            UsageFilter(start, end, user_id),
        ).where(_DAILY_USES_TOKENS)
        return int(await self.session.scalar(query) or 0) + int(
            await self.session.scalar(daily) or 0
        )

    async def by_conversation(
        self, conversation_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ConversationSums]:
        """Token and cost sums of the retained events of these conversations (absent: none)."""
        if not conversation_ids:
            return {}
        query = (
            select(
                UsageEvent.conversation_id,
                func.coalesce(func.sum(UsageEvent.input_tokens), 0),
                func.coalesce(func.sum(UsageEvent.output_tokens), 0),
                func.coalesce(func.sum(UsageEvent.cost_usd), 0.0),
            )
            .where(UsageEvent.conversation_id.in_(list(conversation_ids)), _USES_TOKENS)
            .group_by(UsageEvent.conversation_id)
        )
        rows = (await self.session.execute(query)).all()
        return {
            row[0]: ConversationSums(int(row[1]), int(row[2]), float(row[3]))
            for row in rows
            if row[0] is not None
        }

    async def totals(self, scope: UsageFilter) -> UsageSums:
        """Counts and sums over the scope."""
        row = (await self.session.execute(self._where(select(*_sum_columns()), scope))).one()
        daily = self._where_daily(select(*_daily_sum_columns()), scope)
        return _sums(row) + _sums((await self.session.execute(daily)).one())

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
        found: dict[date, UsageSums] = {}
        for row in (await self.session.execute(query)).all():
            found[date.fromisoformat(str(row.bucket)[:10])] = _sums(row)
        daily = self._where_daily(select(UsageDaily.day, *_daily_sum_columns()), scope).group_by(
            UsageDaily.day
        )
        for row in (await self.session.execute(daily)).all():
            day = _bucket_of(date.fromisoformat(str(row.day)), granularity)
            found[day] = found.get(day, UsageSums()) + _sums(row)
        return sorted(found.items())

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
        """Agent-turn sums per model, most used first, rolled-up days included."""
        rows = (await self.session.execute(self._turns_by(scope, UsageEvent.model))).all()
        models = {
            row.key: ModelSums(
                model=row.key,
                turns=int(row.turns),
                failed=int(row.failed),
                input_tokens=int(row.input_tokens),
                output_tokens=int(row.output_tokens),
                cost_usd=float(row.cost_usd),
                avg_latency_ms=None if row.avg_latency_ms is None else float(row.avg_latency_ms),
            )
            for row in rows
        }
        columns: tuple[Any, ...] = (
            UsageDaily.model,
            func.sum(UsageDaily.events).label("turns"),
            _events_if(UsageDaily.status == UsageStatus.failed.value).label("failed"),
            func.sum(UsageDaily.input_tokens).label("input_tokens"),
            func.sum(UsageDaily.output_tokens).label("output_tokens"),
            func.sum(UsageDaily.cost_usd).label("cost_usd"),
        )
        per_model = select(*columns)
        daily = self._where_daily(per_model, scope).where(_DAILY_TURN).group_by(UsageDaily.model)
        for row in (await self.session.execute(daily)).all():
            name = row.model or None  # '' in the aggregates: a turn without a model
            seen = models.get(name)
            models[name] = ModelSums(
                model=name,
                turns=int(row.turns or 0) + (seen.turns if seen else 0),
                failed=int(row.failed or 0) + (seen.failed if seen else 0),
                input_tokens=int(row.input_tokens or 0) + (seen.input_tokens if seen else 0),
                output_tokens=int(row.output_tokens or 0) + (seen.output_tokens if seen else 0),
                cost_usd=float(row.cost_usd or 0.0) + (seen.cost_usd if seen else 0.0),
                # Latency is known only for the turns still held as events.
                avg_latency_ms=seen.avg_latency_ms if seen else None,
            )
        return sorted(models.values(), key=lambda m: (-m.turns, m.model or ""))

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
        users = union(
            self._where(select(UsageEvent.user_id), scope),
            self._where_daily(select(UsageDaily.user_id), scope),
        ).subquery()
        return int(await self.session.scalar(select(func.count()).select_from(users)) or 0)

    async def percentiles(
        self,
        scope: UsageFilter,
        column_name: Literal["latency_ms", "ttft_ms", "approval_wait_ms"],
        qs: Sequence[float],
    ) -> dict[float, int | None]:
        """Nearest-rank percentiles of completed turns' latency, time to first token or wait
        for approvals."""
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
