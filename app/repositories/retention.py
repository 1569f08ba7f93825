"""SQL for retention on the app tables: active threads, idle conversations, expired tokens."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AgentRun, Conversation, RefreshToken, RunStatus, UsageDaily, UsageEvent

# Runs whose thread must not be touched: running now, queued to run, or paused at an interrupt
# (an approval) that will resume from the thread's checkpoints.
ACTIVE_RUN_STATUSES = (
    RunStatus.running.value,
    RunStatus.pending.value,
    RunStatus.interrupted.value,
)


class RetentionRepository:
    """Reads and deletes within one session; each delete is bounded by `limit` rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_thread_ids(self) -> set[str]:
        """Thread ids (conversation ids) with a run in progress."""
        rows = await self.session.scalars(
            select(AgentRun.conversation_id)
            .where(AgentRun.status.in_(ACTIVE_RUN_STATUSES))
            .distinct()
        )
        active = {str(cid) for cid in rows}
        locked = await self.session.scalars(
            select(Conversation.id).where(Conversation.active_run_id.is_not(None))
        )
        return active | {str(cid) for cid in locked}

    async def idle_conversations(
        self, before: datetime, exclude: Collection[str], limit: int
    ) -> list[uuid.UUID]:
        """Up to `limit` conversations untouched since `before`, none of `exclude`."""
        rows = await self.session.scalars(
            select(Conversation.id)
            .where(Conversation.last_activity_at < before)
            .where(Conversation.active_run_id.is_(None))
            .order_by(Conversation.last_activity_at)
            .limit(limit + len(exclude))
        )
        return [cid for cid in rows if str(cid) not in exclude][:limit]

    async def delete_conversations(self, ids: Collection[uuid.UUID]) -> int:
        """Delete conversations; their messages, runs, approvals and feedback go with them."""
        if not ids:
            return 0
        result = await self.session.execute(delete(Conversation).where(Conversation.id.in_(ids)))
        return int(getattr(result, "rowcount", 0) or 0)

    async def count_expired_refresh_tokens(self, now: datetime) -> int:
        """Refresh tokens past their expiry (rotated and revoked ones included)."""
        count = await self.session.scalar(
            select(func.count()).select_from(RefreshToken).where(RefreshToken.expires_at < now)
        )
        return int(count or 0)

    async def delete_expired_refresh_tokens(self, now: datetime, limit: int) -> int:
        """Delete up to `limit` expired refresh tokens. Rotated ones are kept until they expire
        too: reuse detection needs them while they could still be presented."""
        batch = select(RefreshToken.id).where(RefreshToken.expires_at < now).limit(limit)
        result = await self.session.execute(
            delete(RefreshToken).where(RefreshToken.id.in_(batch.scalar_subquery()))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def count_usage_events(self, before: datetime) -> int:
        """Usage events older than `before`."""
        count = await self.session.scalar(
            select(func.count()).select_from(UsageEvent).where(UsageEvent.created_at < before)
        )
        return int(count or 0)

    async def oldest_usage_day(self, before: datetime) -> str | None:
        """The earliest UTC day ('YYYY-MM-DD') with usage events older than `before`."""
        oldest = await self.session.scalar(
            select(func.min(UsageEvent.created_at)).where(UsageEvent.created_at < before)
        )
        if oldest is None:
            return None
        return oldest.astimezone(UTC).strftime("%Y-%m-%d")

    async def roll_up_usage_day(self, day: str, before: datetime) -> int:
        """Add the events of `day` older than `before` to the day's aggregates (per user,
        kind, model, status) and delete them; the number of events rolled up."""
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        end = min(start + timedelta(days=1), before)
        window = (UsageEvent.created_at >= start, UsageEvent.created_at < end)
        model = func.coalesce(UsageEvent.model, "")
        rows = await self.session.execute(
            select(
                UsageEvent.user_id,
                UsageEvent.kind,
                model,
                UsageEvent.status,
                func.count(),
                func.coalesce(func.sum(UsageEvent.input_tokens), 0),
                func.coalesce(func.sum(UsageEvent.output_tokens), 0),
                func.coalesce(func.sum(UsageEvent.cost_usd), 0.0),
            )
            .where(*window)
            .group_by(UsageEvent.user_id, UsageEvent.kind, model, UsageEvent.status)
        )
        rolled = 0
        for user_id, kind, model_name, status, events, inputs, outputs, cost in rows.all():
            aggregate = await self.session.scalar(
                select(UsageDaily).where(
                    UsageDaily.day == day,
                    UsageDaily.user_id == user_id,
                    UsageDaily.kind == kind,
                    UsageDaily.model == model_name,
                    UsageDaily.status == status,
                )
            )
            if aggregate is None:
                aggregate = UsageDaily(
                    day=day,
                    user_id=user_id,
                    kind=kind,
                    model=model_name,
                    status=status,
                    events=0,
                    input_tokens=0,
                    output_tokens=0,
                    cost_usd=0.0,
                )
                self.session.add(aggregate)
            aggregate.events += int(events)
            aggregate.input_tokens += int(inputs)
            aggregate.output_tokens += int(outputs)
            aggregate.cost_usd += float(cost)
            rolled += int(events)
        await self.session.flush()
        await self.session.execute(delete(UsageEvent).where(*window))
        return rolled
