"""Retention: keep the data MAI needs and drop the rest, in bounded batches.

- Thread checkpoints: each thread keeps its newest checkpoint (its state, and the writes of a
  pending interrupt) and the MAI_CHECKPOINT_HISTORY before it, for history and time travel.
- Conversations untouched for MAI_THREAD_TTL_DAYS are deleted with everything they own
  (messages, runs, approvals, feedback, their thread's checkpoints); unset: kept.
- Refresh tokens past their expiry are deleted.
- Usage events older than MAI_USAGE_RETENTION_DAYS are rolled up into daily aggregates per
  user, kind, model and status (`usage_daily`), then deleted; unset: kept.

A thread with a run in progress is never touched. The sweeper runs this every
MAI_RETENTION_SWEEP_SECONDS; `mai prune [--dry-run]` runs it on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.core.config import Settings
from app.core.logging import get_logger
from app.repositories.checkpoints import CheckpointPruning, CheckpointRepository
from app.repositories.retention import RetentionRepository

if TYPE_CHECKING:
    from app.core.resources import Resources

log = get_logger(__name__)

# Any fixed key: the PostgreSQL advisory lock that lets one process prune at a time.
_LOCK = 4_172_031_554


@dataclass
class PruneReport:
    """What one pass removed (or, in a dry run, would remove)."""

    dry_run: bool = False
    # Another process (a second worker, or `mai prune`) held the retention lock: nothing done.
    skipped: bool = False
    checkpoints: CheckpointPruning = field(default_factory=CheckpointPruning)
    conversations: int = 0
    refresh_tokens: int = 0
    usage_events: int = 0
    usage_days: int = 0

    def lines(self) -> list[str]:
        """One line per kind of data, for `mai prune`."""
        if self.skipped:
            return ["another MAI process is pruning right now; nothing was done"]
        verb = "would remove" if self.dry_run else "removed"
        c = self.checkpoints
        return [
            f"checkpoints: {verb} {c.checkpoints} checkpoint(s), {c.writes} pending write(s) "
            f"and {c.blobs} blob(s) from {c.threads} thread(s)",
            f"conversations idle past MAI_THREAD_TTL_DAYS: {verb} {self.conversations}",
            f"expired refresh tokens: {verb} {self.refresh_tokens}",
            f"usage events past MAI_USAGE_RETENTION_DAYS: {verb} {self.usage_events}"
            + ("" if self.dry_run else f", rolled up into {self.usage_days} day(s)"),
        ]


def checkpoint_engine(settings: Settings, app_engine: AsyncEngine) -> AsyncEngine | None:
    """The database of the checkpointer's tables when it is not the app database (SQLite
    keeps them in their own file); None when they share the app database (PostgreSQL)."""
    if settings.uses_postgres:
        return None
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.core.checkpoint import checkpoint_sqlite_path

    return create_async_engine(
        f"sqlite+aiosqlite:///{checkpoint_sqlite_path(settings)}", connect_args={"timeout": 30}
    )


class Retention:
    """One pruning pass over the app database and the checkpointer's tables."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.clock = clock

    async def run(self, *, dry_run: bool = False) -> PruneReport:
        """Prune everything retention covers; every statement touches at most one batch.

        On PostgreSQL one process prunes at a time (every worker runs a sweeper): a pass that
        finds the lock taken returns at once with `skipped`.
        """
        if not self.settings.uses_postgres:
            return await self._run(dry_run)
        async with self.engine.connect() as lock:
            taken = await lock.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": _LOCK})
            await lock.commit()
            if not taken:
                return PruneReport(dry_run=dry_run, skipped=True)
            try:
                return await self._run(dry_run)
            finally:
                await lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK})
                await lock.commit()

    async def _run(self, dry_run: bool) -> PruneReport:
        report = PruneReport(dry_run=dry_run)
        own = checkpoint_engine(self.settings, self.engine)
        checkpoints = CheckpointRepository(own or self.engine)
        try:
            async with self.sessionmaker() as session:
                active = await RetentionRepository(session).active_thread_ids()
            report.conversations = await self._expire_conversations(checkpoints, active, dry_run)
            report.checkpoints = await self._prune_checkpoints(checkpoints, active, dry_run)
            report.refresh_tokens = await self._sweep_tokens(dry_run)
            report.usage_events, report.usage_days = await self._roll_up_usage(dry_run)
        finally:
            if own is not None:
                await own.dispose()
        return report

    async def _prune_checkpoints(
        self, checkpoints: CheckpointRepository, active: set[str], dry_run: bool
    ) -> CheckpointPruning:
        keep = max(1, self.settings.checkpoint_history)
        batch = self.settings.retention_batch_size
        total = CheckpointPruning()
        after = ""
        while True:
            threads = await checkpoints.threads_with_history_over(keep, after, batch)
            if not threads:
                return total
            after = threads[-1]
            eligible = [thread for thread in threads if thread not in active]
            total.add(await checkpoints.prune(eligible, keep, dry_run=dry_run))
            # Let requests in between batches: the sweeper shares the event loop.
            await asyncio.sleep(0)

    async def _expire_conversations(
        self, checkpoints: CheckpointRepository, active: set[str], dry_run: bool
    ) -> int:
        ttl = self.settings.thread_ttl_days
        if ttl is None:
            return 0
        before = self.clock.now() - timedelta(days=ttl)
        batch = self.settings.retention_batch_size
        removed = 0
        seen: set[str] = set()
        while True:
            async with self.sessionmaker() as session:
                repository = RetentionRepository(session)
                ids = await repository.idle_conversations(before, active | seen, batch)
                if not ids:
                    return removed
                if dry_run:
                    seen.update(str(cid) for cid in ids)
                    removed += len(ids)
                    continue
                # Checkpoints first: a conversation row left behind can be expired again,
                # a thread whose conversation is gone would never be found.
                await checkpoints.delete_threads([str(cid) for cid in ids])
                removed += await repository.delete_conversations(ids)
                await session.commit()
            await asyncio.sleep(0)

    async def _sweep_tokens(self, dry_run: bool) -> int:
        now = self.clock.now()
        batch = self.settings.retention_batch_size
        async with self.sessionmaker() as session:
            repository = RetentionRepository(session)
            if dry_run:
                return await repository.count_expired_refresh_tokens(now)
            removed = 0
            while True:
                deleted = await repository.delete_expired_refresh_tokens(now, batch)
                await session.commit()
                removed += deleted
                if deleted < batch:
                    return removed
                await asyncio.sleep(0)

    async def _roll_up_usage(self, dry_run: bool) -> tuple[int, int]:
        days = self.settings.usage_retention_days
        if days is None:
            return 0, 0
        before = self.clock.now() - timedelta(days=days)
        if dry_run:
            async with self.sessionmaker() as session:
                return await RetentionRepository(session).count_usage_events(before), 0
        events = rolled_days = 0
        # One UTC day per transaction: its aggregates and the deletion of its events commit
        # together, so no event is ever counted twice or lost.
        while True:
            async with self.sessionmaker() as session:
                repository = RetentionRepository(session)
                day = await repository.oldest_usage_day(before)
                if day is None:
                    return events, rolled_days
                events += await repository.roll_up_usage_day(day, before)
                await session.commit()
            rolled_days += 1
            await asyncio.sleep(0)


def retention_for(resources: Resources) -> Retention:
    """The retention pass of a started app."""
    return Retention(resources.settings, resources.engine, resources.sessionmaker, resources.clock)


async def _sweep_forever(resources: Resources) -> None:
    while True:
        await asyncio.sleep(resources.settings.retention_sweep_seconds)
        try:
            report = await retention_for(resources).run()
            log.info(
                "retention_swept",
                checkpoints=report.checkpoints.checkpoints,
                threads=report.checkpoints.threads,
                conversations=report.conversations,
                refresh_tokens=report.refresh_tokens,
                usage_events=report.usage_events,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention_sweep_failed")


def start_retention(resources: Resources) -> None:
    """Start the background sweeper; it stops with the app (registered on the exit stack)."""
    sweeper = asyncio.create_task(_sweep_forever(resources), name="retention-sweeper")

    async def _stop() -> None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper

    resources.exit_stack.push_async_callback(_stop)
