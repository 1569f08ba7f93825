"""Usage analytics: recording events (turns, knowledge-base uploads and searches), cost, budgets,
and the cached aggregates behind /analytics.

A turn is one event however often it paused: a run that stops for approvals and resumes
ends twice on the run engine, and its second end is folded into the event of its first (tokens
and running time added, the final status kept, the time people took to decide in
`approval_wait_ms`). A tool call a person rejected is `rejected` in the tool breakdown, apart
from the calls that failed.

Caching: every aggregate is stored in `resources.store` (Redis when configured) under a key that
folds in a version: one per user and one global, each replaced when an event of that user is
recorded. A new event thus changes the key every affected answer is looked up under, so no stale
aggregate is served; old entries expire after MAI_ANALYTICS_CACHE_SECONDS.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest, NotFound, TooManyRequests, Unprocessable
from app.core.logging import get_logger
from app.core.metrics import record_cache_lookup, record_cost
from app.core.resources import Resources
from app.core.runs import RunOutcome
from app.models import UsageEvent, UsageKind, UsageStatus, User
from app.repositories.usage import Granularity, UsageFilter, UsageRepository, UsageSums

log = get_logger(__name__)

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
_VERSION_TTL_SECONDS = 30 * 86400
TurnStatus = Literal["completed", "failed", "awaiting_approval"]
KBEventKind = Literal["kb_upload", "kb_search"]


@dataclass(frozen=True, slots=True)
class UsageRange:
    """A validated UTC time range [start, end) and a bucket size."""

    start: datetime
    end: datetime
    granularity: Granularity = "day"
    # Only this graph's agent turns (and memory steps); None: every event.
    graph_id: str | None = None

    @property
    def key(self) -> str:
        """A cache-key fragment naming this range (and graph)."""
        return (
            f"{self.start.isoformat()}|{self.end.isoformat()}|{self.granularity}"
            f"|{self.graph_id or '*'}"
        )


# Moments outside these years are rejected: default ranges and buckets are computed around
# them, and near datetime's own limits (years 1 and 9999) that arithmetic overflows.
MIN_YEAR = 1970
MAX_YEAR = 9998


def _parse_moment(value: str, name: str, *, end_of_day: bool) -> datetime:
    text = value.strip()
    is_date = len(text) == 10  # a date: from its midnight; `to` includes the whole day
    try:
        if is_date:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(), tzinfo=UTC)
        else:
            if len(text) > 19 and text[-6] == " ":  # an unescaped "+02:00" arrives as " 02:00"
                text = text[:-6] + "+" + text[-5:]
            moment = datetime.fromisoformat(text)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
            moment = moment.astimezone(UTC)
    except ValueError:
        raise Unprocessable(
            f"`{name}` must be a date (2026-01-31) or an ISO 8601 time (2026-01-31T12:00:00Z), "
            f"got {value!r}.",
            code="invalid_date",
            meta={"field": name},
        ) from None
    except OverflowError:  # a time at the very edge of year 1 or 9999, moved to UTC
        moment = datetime.max.replace(tzinfo=UTC)
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise Unprocessable(
            f"`{name}` must fall in the years {MIN_YEAR} to {MAX_YEAR}, got {value!r}.",
            code="date_out_of_range",
            meta={"field": name, "min_year": MIN_YEAR, "max_year": MAX_YEAR},
        )
    return moment + timedelta(days=1) if end_of_day and is_date else moment


def parse_range(
    start: str | None,
    end: str | None,
    granularity: Granularity,
    now: datetime,
    graph_id: str | None = None,
) -> UsageRange:
    """Validate a from/to query (UTC; a zone-less time is UTC; a date `to` includes that day).

    Defaults: to = the end of today, from = 30 days before it. The range must be non-empty and at
    most a year long. With `graph_id`, reports cover that graph's turns only.
    """
    end_at = (
        _parse_moment(end, "to", end_of_day=True)
        if end
        else datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)
    )
    start_at = (
        _parse_moment(start, "from", end_of_day=False)
        if start
        else end_at - timedelta(days=DEFAULT_RANGE_DAYS)
    )
    if start_at >= end_at:
        raise BadRequest(
            f"`from` ({start_at.isoformat()}) must be before `to` ({end_at.isoformat()}).",
            code="invalid_range",
        )
    if end_at - start_at > timedelta(days=MAX_RANGE_DAYS):
        raise BadRequest(
            f"The range is {(end_at - start_at).days} days long; ask for at most "
            f"{MAX_RANGE_DAYS} days at a time.",
            code="range_too_long",
            meta={"max_days": MAX_RANGE_DAYS},
        )
    return UsageRange(start_at, end_at, granularity, graph_id or None)


def _bucket_floor(moment: datetime, granularity: Granularity) -> date:
    day = moment.astimezone(UTC).date()
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def _next_bucket(day: date, granularity: Granularity) -> date:
    if granularity == "day":
        return day + timedelta(days=1)
    if granularity == "week":
        return day + timedelta(days=7)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _at_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _sums_json(sums: UsageSums) -> dict[str, Any]:
    data = asdict(sums)
    data["total_tokens"] = sums.input_tokens + sums.output_tokens
    data["cost_usd"] = round(sums.cost_usd, 8)
    return data


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A user's daily token budget today (UTC)."""

    daily_tokens: int | None  # None: no budget applies
    used_today: int
    resets_at: datetime

    @property
    def remaining(self) -> int | None:
        """Tokens left today, or None without a budget."""
        if self.daily_tokens is None:
            return None
        return max(0, self.daily_tokens - self.used_today)

    @property
    def exhausted(self) -> bool:
        """Whether a new turn would start over budget."""
        return self.daily_tokens is not None and self.used_today >= self.daily_tokens

    def as_json(self) -> dict[str, Any]:
        """The budget as the API shows it."""
        return {
            "daily_tokens": self.daily_tokens,
            "used_today": self.used_today,
            "remaining": self.remaining,
            "resets_at": self.resets_at.isoformat(),
        }


def tool_uses(tools: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Keep the name and status of each tool run (the graph's ToolRun has more)."""
    return [
        {"name": str(tool.get("name", "unknown")), "status": str(tool.get("status", "ok"))}
        for tool in tools
    ]


class AnalyticsService:
    """Usage events, budgets and the aggregates behind /analytics.

    With a session (a request's), it reads and writes in it; without one (the agent's background
    runs), each call uses a short session of its own.
    """

    def __init__(self, resources: Resources, session: AsyncSession | None = None) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.store = resources.store
        self.clock = resources.clock
        self.prices = resources.price_table
        self._session = session

    @asynccontextmanager
    async def _use_session(self) -> AsyncIterator[AsyncSession]:
        if self._session is not None:
            yield self._session
            return
        async with self.resources.sessionmaker() as session:
            yield session

    # --- recording -------------------------------------------------------------------------

    async def record_turn(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID | None,
        run_id: str | uuid.UUID | None,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        latency_ms: float | None,
        status: TurnStatus,
        ttft_ms: float | None = None,
        tools: Iterable[Mapping[str, Any]] = (),
        streamed: bool = False,
        error_code: str | None = None,
        end_user: str | None = None,
        resumed: bool = False,
        graph_id: str = "assistant",
    ) -> UsageEvent | None:
        """Record one agent turn of a graph (tokens summed over its model calls) with its cost;
        the caller's end-user id (OpenAI's `user`) goes in its details.

        A run that pauses ends more than once: its pause (`awaiting_approval`) and its end
        after a resume (`resumed`) are folded into one event per run.

        Never raises for a database failure: the turn's answer matters more than its meter; the
        failure is logged and None returned.
        """
        event = self._priced(
            UsageKind.agent_turn,
            user_id=user_id,
            conversation_id=conversation_id,
            run_id=run_id,
            model=model,
            graph_id=graph_id,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
        event.latency_ms = None if latency_ms is None else round(latency_ms)
        event.ttft_ms = None if ttft_ms is None else round(ttft_ms)
        event.streamed = streamed
        event.tools = tool_uses(tools)
        event.status = UsageStatus(status).value
        event.error_code = error_code
        event.details = {"end_user": end_user} if end_user else {}
        if event.run_id is None or not (resumed or status == "awaiting_approval"):
            return await self._record(event)
        return await self._record_turn(event)

    async def _record_turn(self, event: UsageEvent) -> UsageEvent | None:
        """Insert a run's turn, or fold it into the event its earlier pause left."""
        event.created_at = self.clock.now()
        assert event.run_id is not None
        try:
            async with self._use_session() as session:
                repo = UsageRepository(session)
                stored = await repo.turn_of_run(event.run_id)
                if stored is None:
                    stored = await repo.add(event)
                else:
                    merge_turn(stored, event)
                if stored is not event:
                    run_uuid = _uuid_or_none(event.run_id)
                    if run_uuid is not None:
                        stored.approval_wait_ms = await repo.approval_wait_ms(run_uuid)
                await session.commit()
        except (SQLAlchemyError, OSError):
            log.exception("usage_event_not_recorded", kind=event.kind, user_id=str(event.user_id))
            return None
        await self._bump_versions(event.user_id)
        return stored

    async def record_memory_step(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID | None,
        run_id: uuid.UUID | str | None,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        graph_id: str = "assistant",
    ) -> UsageEvent | None:
        """Record the tokens and cost of a turn's memory step, apart from the answer's."""
        event = self._priced(
            UsageKind.memory,
            user_id=user_id,
            conversation_id=conversation_id,
            run_id=run_id,
            model=model,
            graph_id=graph_id,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
        event.streamed = False
        event.tools = []
        event.status = UsageStatus.completed.value
        event.details = {}
        return await self._record(event)

    def _priced(
        self,
        kind: UsageKind,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID | None,
        run_id: uuid.UUID | str | None,
        model: str | None,
        graph_id: str,
        input_tokens: int,
        output_tokens: int,
    ) -> UsageEvent:
        """A usage event for model tokens, priced, its cost counted on the cost metric."""
        inputs, outputs = max(0, int(input_tokens)), max(0, int(output_tokens))
        event = UsageEvent(
            user_id=user_id,
            kind=kind.value,
            conversation_id=conversation_id,
            run_id=None if run_id is None else str(run_id),
            model=model or None,
            graph_id=graph_id,
            input_tokens=inputs,
            output_tokens=outputs,
            cost_usd=self.prices.cost(model, inputs, outputs),
        )
        if event.cost_usd > 0:
            record_cost(event.model or "unknown", event.cost_usd, graph=graph_id)
        return event

    async def record_kb_event(
        self,
        *,
        user_id: uuid.UUID,
        kind: KBEventKind,
        status: Literal["completed", "failed"] = "completed",
        latency_ms: float | None = None,
        details: Mapping[str, Any] | None = None,
        error_code: str | None = None,
    ) -> UsageEvent | None:
        """Record a knowledge-base upload or search (details: document id, result count…)."""
        event = UsageEvent(
            user_id=user_id,
            kind=UsageKind(kind).value,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            latency_ms=None if latency_ms is None else round(latency_ms),
            streamed=False,
            tools=[],
            status=UsageStatus(status).value,
            error_code=error_code,
            details=dict(details or {}),
        )
        return await self._record(event)

    async def _record(self, event: UsageEvent) -> UsageEvent | None:
        event.created_at = self.clock.now()
        try:
            async with self._use_session() as session:
                await UsageRepository(session).add(event)
                await session.commit()
        except (SQLAlchemyError, OSError):
            log.exception("usage_event_not_recorded", kind=event.kind, user_id=str(event.user_id))
            return None
        # After the commit, so a reader that sees the new version also sees the event.
        await self._bump_versions(event.user_id)
        return event

    # --- cache -----------------------------------------------------------------------------

    @staticmethod
    def _version_key(user_id: uuid.UUID | None) -> str:
        return f"analytics:version:{user_id}" if user_id else "analytics:version:all"

    async def _bump_versions(self, user_id: uuid.UUID) -> None:
        token = uuid.uuid4().hex[:16]
        for key in (self._version_key(user_id), self._version_key(None)):
            await self.store.set(key, token, ttl_seconds=_VERSION_TTL_SECONDS)

    async def _cache_key(self, kind: str, user_id: uuid.UUID | None, extra: str) -> str:
        version = await self.store.get(self._version_key(user_id)) or "0"
        return f"analytics:cache:{kind}:{user_id or 'all'}:{version}:{extra}"

    async def _cached(self, key: str) -> dict[str, Any] | None:
        if self.settings.analytics_cache_seconds <= 0:
            return None
        raw = await self.store.get(key)
        try:
            value = json.loads(raw) if raw is not None else None
        except ValueError:
            value = None
        hit = isinstance(value, dict)
        record_cache_lookup("analytics", hit)
        return value if hit else None

    async def _remember(self, key: str, value: dict[str, Any]) -> None:
        if self.settings.analytics_cache_seconds > 0:
            await self.store.set(
                key, json.dumps(value), ttl_seconds=self.settings.analytics_cache_seconds
            )

    # --- budgets ---------------------------------------------------------------------------

    def daily_budget_of(self, user: User) -> int | None:
        """The user's tokens per UTC day: their own budget, else MAI_DAILY_TOKEN_BUDGET; 0 = off."""
        budget = (
            user.daily_token_budget
            if user.daily_token_budget is not None
            else self.settings.daily_token_budget
        )
        return budget or None

    async def budget_status(self, user: User) -> BudgetStatus:
        """Today's budget, use and reset time (the next UTC midnight)."""
        now = self.clock.now().astimezone(UTC)
        today = _at_midnight(now.date())
        tomorrow = today + timedelta(days=1)
        budget = self.daily_budget_of(user)
        used = await self._tokens_between(user.id, today, tomorrow)
        return BudgetStatus(budget, used, tomorrow)

    async def _tokens_between(self, user_id: uuid.UUID, start: datetime, end: datetime) -> int:
        key = await self._cache_key("tokens", user_id, f"{start.isoformat()}|{end.isoformat()}")
        cached = await self._cached(key)
        if cached is not None and isinstance(cached.get("tokens"), int):
            return int(cached["tokens"])
        async with self._use_session() as session:
            tokens = await UsageRepository(session).turn_tokens(user_id, start, end)
        await self._remember(key, {"tokens": tokens})
        return tokens

    async def check_budget(self, user: User) -> BudgetStatus:
        """Refuse a turn that would start over the daily budget: 429 token_budget_exceeded."""
        if self.daily_budget_of(user) is None:
            now = self.clock.now().astimezone(UTC)
            return BudgetStatus(None, 0, _at_midnight(now.date()) + timedelta(days=1))
        status = await self.budget_status(user)
        if status.exhausted:
            retry_after = max(1, int((status.resets_at - self.clock.now()).total_seconds()))
            raise TooManyRequests(
                f"Your daily budget of {status.daily_tokens} tokens is used up "
                f"({status.used_today} used today); it resets at {status.resets_at.isoformat()}.",
                code="token_budget_exceeded",
                headers={"Retry-After": str(retry_after)},
                meta={
                    "daily_tokens": status.daily_tokens,
                    "used_today": status.used_today,
                    "resets_at": status.resets_at.isoformat(),
                    "retry_after": retry_after,
                },
            )
        return status

    # --- reports ---------------------------------------------------------------------------

    async def _report(self, user_id: uuid.UUID, span: UsageRange) -> dict[str, Any]:
        key = await self._cache_key("usage", user_id, span.key)
        cached = await self._cached(key)
        if cached is not None:
            return cached
        scope = UsageFilter(span.start, span.end, user_id, span.graph_id)
        async with self._use_session() as session:
            repo = UsageRepository(session)
            totals = await repo.totals(scope)
            found = dict(await repo.buckets(scope, span.granularity))
            models = await repo.by_model(scope)
            graphs = await repo.by_graph(scope)
        buckets = []
        day = _bucket_floor(span.start, span.granularity)
        while _at_midnight(day) < span.end:
            following = _next_bucket(day, span.granularity)
            buckets.append(
                {
                    "start": _at_midnight(day).isoformat(),
                    "end": _at_midnight(following).isoformat(),
                    **_sums_json(found.get(day, UsageSums())),
                }
            )
            day = following
        report = {
            "user_id": str(user_id),
            "from": span.start.isoformat(),
            "to": span.end.isoformat(),
            "granularity": span.granularity,
            "totals": _sums_json(totals),
            "buckets": buckets,
            "models": [{**asdict(m), "cost_usd": round(m.cost_usd, 8)} for m in models],
            "graph": span.graph_id,
            "graphs": [{**asdict(g), "cost_usd": round(g.cost_usd, 8)} for g in graphs],
        }
        await self._remember(key, report)
        return report

    async def usage(self, user: User, span: UsageRange) -> dict[str, Any]:
        """A user's totals and buckets over the range, with today's budget."""
        report = await self._report(user.id, span)
        return {**report, "budget": (await self.budget_status(user)).as_json()}

    async def user_usage(self, user_id: uuid.UUID, span: UsageRange) -> dict[str, Any]:
        """Any user's usage (admin), or 404."""
        async with self._use_session() as session:
            user = await session.get(User, user_id)
        if user is None:
            raise NotFound(f"No user with id {user_id}.", code="user_not_found")
        return {**(await self.usage(user, span)), "email": user.email}

    async def system(self, span: UsageRange) -> dict[str, Any]:
        """Totals, active users, per-model and per-tool breakdowns, error rate, p50/p95 latency."""
        key = await self._cache_key("system", None, span.key)
        cached = await self._cached(key)
        if cached is not None:
            return cached
        scope = UsageFilter(span.start, span.end, graph_id=span.graph_id)
        tools: dict[str, dict[str, int]] = {}
        async with self._use_session() as session:
            repo = UsageRepository(session)
            totals = await repo.totals(scope)
            active = await repo.active_users(scope)
            models = await repo.by_model(scope)
            graphs = await repo.by_graph(scope)
            latency = await repo.percentiles(scope, "latency_ms", (0.5, 0.95))
            ttft = await repo.percentiles(scope, "ttft_ms", (0.5, 0.95))
            waits = await repo.percentiles(scope, "approval_wait_ms", (0.5, 0.95))
            for name, status, calls in await repo.tool_counts(scope):
                counts = tools.setdefault(name, {})
                counts[status] = counts.get(status, 0) + calls
        ended = totals.completed + totals.failed
        report = {
            "from": span.start.isoformat(),
            "to": span.end.isoformat(),
            "totals": _sums_json(totals),
            "active_users": active,
            "error_rate": round(totals.failed / ended, 4) if ended else 0.0,
            "latency_ms": {"p50": latency[0.5], "p95": latency[0.95]},
            "ttft_ms": {"p50": ttft[0.5], "p95": ttft[0.95]},
            "approval_wait_ms": {"p50": waits[0.5], "p95": waits[0.95]},
            "models": [{**asdict(m), "cost_usd": round(m.cost_usd, 8)} for m in models],
            "graph": span.graph_id,
            "graphs": [{**asdict(g), "cost_usd": round(g.cost_usd, 8)} for g in graphs],
            "tools": sorted(
                (
                    {
                        "name": name,
                        "calls": sum(counts.values()),
                        # A call a person rejected did not fail: it is counted on its own.
                        "errors": sum(n for s, n in counts.items() if s not in _NOT_ERRORS),
                        "rejected": counts.get("rejected", 0),
                        "statuses": counts,
                    }
                    for name, counts in tools.items()
                ),
                key=lambda item: (-int(str(item["calls"])), str(item["name"])),
            ),
        }
        await self._remember(key, report)
        return report


# Tool run statuses that are not failures: it ran, or a person said no (or let it expire).
_NOT_ERRORS = frozenset({"ok", "rejected"})


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def merge_turn(stored: UsageEvent, later: UsageEvent) -> None:
    """Fold another end of the same run's turn into its stored event.

    The two ends may be recorded in either order (the pause's hook can run after the resumed
    run finished), so the final status wins over `awaiting_approval` whichever comes last.
    """
    paused = UsageStatus.awaiting_approval.value
    final = later if later.status != paused or stored.status == paused else stored
    stored.input_tokens += later.input_tokens
    stored.output_tokens += later.output_tokens
    stored.cost_usd += later.cost_usd
    if later.latency_ms is not None:
        stored.latency_ms = (stored.latency_ms or 0) + later.latency_ms
    if stored.ttft_ms is None:
        stored.ttft_ms = later.ttft_ms
    stored.streamed = stored.streamed or later.streamed
    stored.model = stored.model or later.model
    # The final state holds every tool run of the turn, the ones before the pause too.
    stored.tools = final.tools or stored.tools or later.tools
    stored.status = final.status
    stored.error_code = final.error_code
    stored.created_at = min(stored.created_at, later.created_at)


_TURN_STATUSES: dict[str, TurnStatus] = {
    "completed": "completed",
    "failed": "failed",
    "interrupted": "failed",
    "awaiting_approval": "awaiting_approval",
    "interrupted_for_approval": "awaiting_approval",
}


def install_usage_recording(resources: Resources) -> None:
    """Record a usage event for every agent turn that ends (a hook on the run registry)."""

    async def record(outcome: RunOutcome) -> None:
        status = _TURN_STATUSES.get(outcome.status, "failed")
        await AnalyticsService(resources).record_turn(
            user_id=outcome.user_id,
            conversation_id=outcome.conversation_id,
            run_id=outcome.run_id,
            model=outcome.model,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            latency_ms=outcome.duration_ms,
            ttft_ms=outcome.ttft_ms if outcome.streamed else None,
            tools=outcome.tool_calls,
            status=status,
            streamed=outcome.streamed,
            error_code=outcome.error_code,
            end_user=outcome.end_user,
            resumed=outcome.resumed,
            graph_id=outcome.graph_id,
        )
        if outcome.memory_usage:
            await AnalyticsService(resources).record_memory_step(
                user_id=outcome.user_id,
                conversation_id=outcome.conversation_id,
                run_id=outcome.run_id,
                model=outcome.model,
                input_tokens=int(outcome.memory_usage.get("input_tokens", 0)),
                output_tokens=int(outcome.memory_usage.get("output_tokens", 0)),
                graph_id=outcome.graph_id,
            )

    resources.runs.hooks.append(record)
