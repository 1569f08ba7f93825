"""The worker: claims pending runs up to MAI_RUN_CONCURRENCY, holds their leases, stops the
ones asked to stop, and hands back the runs of workers that died.

Every process that executes runs (`mai serve` by default, `mai worker`) runs one worker; they
share nothing but the database (and Redis for event logs), so any number of them can run on
any number of machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

from app.core.logging import get_logger
from app.core.metrics import record_lease_expiry, record_run_retry, set_run_queue
from app.core.resources import Resources
from app.core.run_events import END_EVENT
from app.core.runs import RunOutcome
from app.models import RunStatus
from app.repositories.conversations import MessageRepository
from app.repositories.runs import RunRepository
from app.services.runs.executor import RunExecutor

log = get_logger(__name__)


class RunWorker:
    """Claims and executes runs in this process."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.clock = resources.clock
        self.registry = resources.runs
        self.executor = RunExecutor(resources)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def lease(self) -> timedelta:
        """How long a claim holds without a heartbeat."""
        return timedelta(seconds=self.settings.run_lease_seconds)

    async def recover_embedded(self) -> int:
        """On the embedded default only one server uses the data dir, so a run still marked
        running at start belongs to a process that died: queue it again at once."""
        if self.settings.uses_postgres:
            return 0
        async with self.resources.sessionmaker() as session:
            runs = RunRepository(session)
            stale = list(await runs.expired_leases(self.clock.now() + self.lease * 1000))
            count = 0
            for run in stale:
                if await runs.transition(run.id, RunStatus.pending, {"available_at": None}):
                    count += 1
            await session.commit()
        if count:
            record_run_retry("lease_expired")
            log.warning("runs_recovered_at_start", count=count)
        return count

    def start(self) -> None:
        """Start the claim loop and the lease keeper."""
        self._tasks = [
            asyncio.create_task(self._claim_forever(), name="run-worker-claim"),
            asyncio.create_task(self._keep_leases(), name="run-worker-leases"),
            asyncio.create_task(self._sweep_forever(), name="run-worker-sweep"),
        ]

    async def stop(self) -> None:
        """Stop claiming; running runs get the shutdown grace, then go back to the queue."""
        self.registry.stopping = True
        for task in self._tasks[:1]:
            task.cancel()
        await self.registry.shutdown(self.settings.agent_shutdown_grace_seconds)
        for task in self._tasks[1:]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # Claiming -----------------------------------------------------------------------------

    async def claim_once(self) -> int:
        """Claim as many due runs as there are free slots and start them; returns how many."""
        free = self.settings.run_concurrency - len(self.registry.local)
        if free <= 0 or self.registry.stopping:
            return 0
        now = self.clock.now()
        started: list[uuid.UUID] = []
        async with self.resources.sessionmaker() as session:
            runs = RunRepository(session)
            for run in await runs.claimable(now, free * 4):
                if len(started) >= free:
                    break
                if await runs.older_pending_on_thread(run):
                    continue
                if not await runs.lock_thread(run.conversation_id, run.id, now):
                    continue
                if await runs.start(run.id, self.registry.worker_id, now, now + self.lease):
                    if run.attempt == 0 and run.command is None:
                        await MessageRepository(session).move_to_end(run.conversation_id, run.id)
                    started.append(run.id)
            await session.commit()
        for run_id in started:
            self.registry.start(run_id, self.executor.execute(run_id))
        return len(started)

    async def _claim_forever(self) -> None:
        while not self.registry.stopping:
            self.registry.wakeup.clear()
            try:
                claimed = await self.claim_once()
            except Exception:
                log.warning("run_claim_failed", exc_info=True)
                claimed = 0
            if claimed:
                continue
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # races with the wake-up, and the loop would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.run_poll_seconds):
                    await self.registry.wakeup.wait()

    # Leases and cancellation --------------------------------------------------------------

    async def _keep_leases(self) -> None:
        """Renew the leases of local runs (every third of a lease) and pick up cancel requests
        made in other processes (every half second)."""
        renew_every = max(self.settings.run_lease_seconds / 3, 0.2)
        waited = 0.0
        while True:
            await asyncio.sleep(0.5)
            waited += 0.5
            local = self.registry.running_here()
            if not local:
                continue
            try:
                async with self.resources.sessionmaker() as session:
                    runs = RunRepository(session)
                    if waited >= renew_every:
                        waited = 0.0
                        await runs.renew(
                            local, self.registry.worker_id, self.clock.now() + self.lease
                        )
                    requests = await runs.cancel_requests(local)
                    await session.commit()
            except Exception:
                log.warning("run_lease_renewal_failed", exc_info=True)
                continue
            for run_id, action in requests.items():
                self.registry.cancel_local(run_id, action)

    async def sweep_once(self) -> int:
        """Hand back runs whose lease expired: queued again while attempts remain (resumed
        from their checkpoint), else failed; returns how many were handled."""
        now = self.clock.now()
        handled = 0
        async with self.resources.sessionmaker() as session:
            runs = RunRepository(session)
            expired = list(await runs.expired_leases(now))
            failed = []
            for run in expired:
                if run.id in self.registry.local:
                    continue
                if run.attempt < self.settings.run_max_attempts:
                    if await runs.transition(run.id, RunStatus.pending, {"available_at": None}):
                        record_lease_expiry("requeued")
                        record_run_retry("lease_expired")
                        handled += 1
                elif await runs.transition(
                    run.id,
                    RunStatus.error,
                    {
                        "error_code": "run_abandoned",
                        "error": (
                            f"The run's worker stopped {run.attempt} times while running it; "
                            "it was given up (MAI_RUN_MAX_ATTEMPTS)."
                        ),
                        "error_status": 503,
                        "finished_at": now,
                    },
                ):
                    await runs.release_thread(run.conversation_id, run.id, now)
                    record_lease_expiry("failed")
                    failed.append(run)
                    handled += 1
            await session.commit()
            set_run_queue(await runs.count_pending(), await runs.count_by_status())
        for run in failed:
            events = self.registry.events
            await events.append(
                run.id, "error", {"error": "run_abandoned", "detail": "The run was given up."}
            )
            await events.append(run.id, END_EVENT, None)
            await self.registry.notify(
                RunOutcome(
                    run_id=run.id,
                    conversation_id=run.conversation_id,
                    user_id=run.user_id,
                    status="failed",
                    model=run.model,
                    input_tokens=0,
                    output_tokens=0,
                    duration_ms=0.0,
                    ttft_ms=None,
                    streamed=run.streamed,
                    tool_calls=[],
                    error_code="run_abandoned",
                    error="The run was given up.",
                    started_at=run.started_at,
                    finished_at=now,
                    graph_id=run.graph_id,
                )
            )
        if handled:
            log.warning("run_leases_expired", count=handled)
            self.registry.wakeup.set()
        return handled

    async def _sweep_forever(self) -> None:
        interval = max(self.settings.run_lease_seconds / 2, 0.5)
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.warning("run_sweep_failed", exc_info=True)
            await asyncio.sleep(interval)
