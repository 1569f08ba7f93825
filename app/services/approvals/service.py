"""Approvals as a durable resource: recorded when a run pauses, decided by people, resumed.

Lifecycle: the agent service calls `record_pause` when a turn ends in an approval interrupt
(approvals inserted, run marked awaiting_approval, conversation unlocked, all in one
transaction). A decision is one conditional UPDATE (`status = 'pending'`), so two deciders in
any processes cannot both win. When the last approval of a pause is decided, the decider claims
the resume (once, across processes) and queues the run again on the run engine with
`Command(resume={approval_id: decision})`. The sweeper expires overdue approvals the same way
and resumes pauses a stopped process left settled but not resumed.

Besides tool calls, a planner's plan-approval interrupt becomes one approval of kind "plan"
(the plan in `args`); modifying it means sending a new plan, checked by the planner's own
validation before anything is recorded (see `app.services.approvals.plans`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.logging import get_logger
from app.core.metrics import observe_approval_wait, set_approvals_pending
from app.core.resources import Resources
from app.models import (
    AgentRun,
    Approval,
    ApprovalEvent,
    ApprovalEventKind,
    ApprovalKind,
    ApprovalStatus,
    RunStatus,
    User,
)
from app.repositories.approvals import ApprovalRepository
from app.services.approvals.plans import check_modified_plan, is_plan_request
from app.services.runs import RunEngine
from app.services.tools import current_registry
from graphs.assistant.approvals import EXPIRED, INTERRUPT_KIND

log = get_logger(__name__)

RUN_AWAITING = RunStatus.interrupted.value
PENDING = ApprovalStatus.pending.value
REQUESTED_EVENT = "approval.requested"
DECIDED_EVENT = "approval.decided"

DecisionKind = Literal["approved", "rejected", "modified"]


def approval_json(approval: Approval) -> dict[str, Any]:
    """An approval as JSON values (API answers, SSE notifications, webhooks).

    A plan approval (`kind` "plan") carries the planner's plan in `plan` (and in `args`); a
    modified plan is in `edited_args`."""
    return {
        "id": str(approval.id),
        "kind": approval.kind or ApprovalKind.tool.value,
        "plan": approval.plan,
        "status": approval.status,
        "tool": approval.tool,
        "args": approval.args,
        "edited_args": approval.edited_args,
        "reason": approval.reason,
        "user_id": str(approval.user_id),
        "conversation_id": str(approval.conversation_id),
        "run_id": str(approval.run_id),
        "tool_call_id": approval.tool_call_id,
        "requested_at": approval.requested_at.isoformat(),
        "expires_at": approval.expires_at.isoformat(),
        "decided_by": str(approval.decided_by) if approval.decided_by else None,
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
        "decision_reason": approval.decision_reason,
    }


def interrupt_json(interrupt_id: str, approvals: Sequence[Approval]) -> dict[str, Any]:
    """A pause in LangGraph's `__interrupt__` shape ({value, id}) for the given approvals."""
    requests = [
        {
            "approval_id": str(a.id),
            "tool_call_id": a.tool_call_id,
            "tool": a.tool,
            "args": a.args,
            "reason": a.reason or "",
            "user_id": str(a.user_id),
            "conversation_id": str(a.conversation_id),
            "run_id": str(a.run_id),
            "requested_at": a.requested_at.isoformat(),
            "expires_at": a.expires_at.isoformat(),
        }
        for a in approvals
    ]
    return {"value": {"kind": INTERRUPT_KIND, "approvals": requests}, "id": interrupt_id}


def _parse_time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return fallback
        return moment if moment.tzinfo is not None else fallback
    return fallback


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _plan_rows(
    run: AgentRun, interrupts: list[tuple[str, Any]], now: datetime, timeout: timedelta
) -> list[Approval]:
    """The approvals (kind "plan") a planner's plan-approval interrupts ask for: the plan in
    `args`, the reasons it needs a person in `reason`."""
    rows: list[Approval] = []
    for interrupt_id, value in interrupts:
        if not is_plan_request(value):
            continue
        approval_id = _uuid(value.get("approval_id"))
        plan = value.get("plan")
        if approval_id is None or not isinstance(plan, Mapping):
            continue
        requested_at = _parse_time(value.get("requested_at"), now)
        reasons = [str(reason) for reason in value.get("reasons") or []]
        if value.get("error"):
            # The previous modification could not be used: the approver sees why.
            reasons.append(f"asked again: {value['error']}")
        rows.append(
            Approval(
                id=approval_id,
                kind=ApprovalKind.plan.value,
                user_id=run.user_id,
                conversation_id=run.conversation_id,
                run_id=run.id,
                interrupt_id=interrupt_id,
                tool_call_id="",
                position=0,
                tool="",
                args=dict(plan),
                reason="; ".join(reasons) or None,
                status=PENDING,
                requested_at=requested_at,
                expires_at=_parse_time(value.get("expires_at"), requested_at + timeout),
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """A claimed resume: the run to continue and the decisions to continue it with."""

    run_id: uuid.UUID
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    interrupt_id: str
    resume: dict[str, Any]
    usage_offset: dict[str, int]


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """What a decision led to: the resumed run's plan, or the approvals still pending."""

    approval: Approval
    plan: ResumePlan | None
    pending: list[Approval]


@dataclass(frozen=True, slots=True)
class PausedTurn:
    """A turn waiting for approvals, as /agent/query and the decision endpoints answer it."""

    conversation_id: uuid.UUID
    run_id: uuid.UUID
    interrupt_id: str
    approvals: list[Approval]
    # As `tool_calls_of` lists them.
    tool_calls: list[dict[str, Any]]
    usage: dict[str, int]
    duration_ms: float
    model: str

    status = RUN_AWAITING

    def as_json(self) -> dict[str, Any]:
        """The paused turn as JSON values (TurnOut with status awaiting_approval)."""
        return {
            "conversation_id": str(self.conversation_id),
            "message_id": None,
            "run_id": str(self.run_id),
            # The turn's status as the agent API names it (its run is `interrupted`).
            "status": "awaiting_approval",
            "answer": "",
            "tool_calls": self.tool_calls,
            "citations": [],
            "usage": self.usage,
            "duration_ms": self.duration_ms,
            "model": self.model,
            "approvals": [approval_json(a) for a in self.approvals],
        }

    def interrupt_event(self) -> dict[str, Any]:
        """The `updates` event data announcing the pause: {"__interrupt__": [...]}."""
        return {"__interrupt__": [interrupt_json(self.interrupt_id, self.approvals)]}


class ApprovalService:
    """Approval use cases; stateless, one per request or task is fine."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.clock = resources.clock

    # Recording a pause (the run engine's interrupt handler) -------------------------------

    async def record(
        self, session: AsyncSession, run: AgentRun, interrupts: list[tuple[str, Any]]
    ) -> dict[str, Any] | None:
        """In the transaction that marks `run` interrupted: store the approvals its interrupts
        ask for. Returns what the waiting caller gets (the approvals, the `__interrupt__`
        event), or None when no interrupt is an approval request."""
        now = self.clock.now()
        timeout = timedelta(seconds=self.settings.approval_timeout_seconds)
        rows: list[Approval] = []
        plans = _plan_rows(run, interrupts, now, timeout)
        for interrupt_id, value in interrupts:
            if not isinstance(value, Mapping) or value.get("kind") != INTERRUPT_KIND:
                continue
            for position, request in enumerate(value.get("approvals") or []):
                approval_id = _uuid(request.get("approval_id"))
                if approval_id is None:
                    continue
                requested_at = _parse_time(request.get("requested_at"), now)
                rows.append(
                    Approval(
                        id=approval_id,
                        user_id=run.user_id,
                        conversation_id=run.conversation_id,
                        run_id=run.id,
                        interrupt_id=interrupt_id,
                        tool_call_id=str(request.get("tool_call_id") or ""),
                        position=position,
                        tool=str(request.get("tool") or ""),
                        args=dict(request.get("args") or {}),
                        reason=str(request.get("reason") or "") or None,
                        status=PENDING,
                        requested_at=requested_at,
                        expires_at=_parse_time(request.get("expires_at"), requested_at + timeout),
                    )
                )
        if not rows and not plans:
            return None
        tools = list(rows)
        rows.extend(plans)
        repo = ApprovalRepository(session)
        await repo.add_all(rows)
        for row in rows:
            await repo.add_event(
                ApprovalEvent(
                    approval_id=row.id,
                    kind=ApprovalEventKind.requested.value,
                    args=row.args,
                    reason=row.reason,
                    created_at=now,
                )
            )
        log.info(
            "approvals_requested",
            run_id=str(run.id),
            conversation_id=str(run.conversation_id),
            approvals=[str(row.id) for row in rows],
        )
        extra: dict[str, Any] = {"approvals": [approval_json(row) for row in rows]}
        if tools:
            # A plan approval keeps the graph's own interrupt value (it names its approval).
            event = [interrupt_json(tools[0].interrupt_id, tools)]
            event += [
                {"value": value, "id": interrupt_id}
                for interrupt_id, value in interrupts
                if is_plan_request(value)
            ]
            extra["interrupt_event"] = {"__interrupt__": event}
        return extra

    async def announce(self, extra: Mapping[str, Any]) -> None:
        """After the pause is committed: tell subscribers and the webhook, update the gauge."""
        ids = [_uuid(a.get("id")) for a in extra.get("approvals") or []]
        async with self.resources.sessionmaker() as session:
            repo = ApprovalRepository(session)
            rows = [row for i in ids if i is not None and (row := await repo.get(i)) is not None]
            await self._publish_gauge(repo)
        await self._announce(REQUESTED_EVENT, rows)

    # Reading ------------------------------------------------------------------------------

    async def page(
        self, caller: User, *, status: str | None, limit: int, offset: int
    ) -> tuple[Sequence[Approval], int]:
        """A page of approvals: the caller's own, or everyone's for an admin."""
        async with self.resources.sessionmaker() as session:
            return await ApprovalRepository(session).page(
                user_id=None if caller.is_admin else caller.id,
                status=status,
                limit=limit,
                offset=offset,
            )

    async def get(
        self, caller: User, approval_id: uuid.UUID
    ) -> tuple[Approval, Sequence[ApprovalEvent]]:
        """One approval with its history (404 when missing or not the caller's)."""
        async with self.resources.sessionmaker() as session:
            repo = ApprovalRepository(session)
            approval = self._visible(await repo.get(approval_id), caller, approval_id)
            return approval, await repo.history(approval_id)

    async def pending_for_conversation(self, conversation_id: uuid.UUID) -> list[Approval]:
        """The approvals a conversation waits for."""
        async with self.resources.sessionmaker() as session:
            return list(await ApprovalRepository(session).pending_for_conversation(conversation_id))

    @staticmethod
    def _visible(approval: Approval | None, caller: User, approval_id: uuid.UUID) -> Approval:
        if approval is None or (not caller.is_admin and approval.user_id != caller.id):
            raise NotFound(f"No approval with id {approval_id}.", code="approval_not_found")
        return approval

    # Deciding -----------------------------------------------------------------------------

    def validate_args(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Check edited arguments against the tool's schema (422 naming each problem)."""
        registry = current_registry(self.resources)
        spec = registry.get(tool) if registry is not None else None
        if spec is None:
            raise Unprocessable(
                f"The tool {tool!r} is no longer available, so its arguments cannot be edited; "
                "approve or reject the call instead.",
                code="tool_unavailable",
            )
        try:
            spec.args_schema.model_validate(dict(args))
        except ValidationError as error:
            problems = [
                {
                    "field": ".".join(str(part) for part in item.get("loc", ())) or "args",
                    "message": str(item.get("msg", "invalid")),
                }
                for item in error.errors()
            ]
            summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
            raise Unprocessable(
                f"The edited arguments do not fit the {tool} tool: {summary}.",
                code="invalid_tool_args",
                meta={"errors": problems},
            ) from None
        return dict(args)

    async def decide(
        self,
        caller: User,
        approval_id: uuid.UUID,
        decision: DecisionKind,
        *,
        args: Mapping[str, Any] | None = None,
        reason: str | None = None,
        new_plan: Mapping[str, Any] | None = None,
    ) -> DecisionResult:
        """Approve, reject or modify (approve with edited args; a plan approval with
        `new_plan`) one pending approval.

        404 unknown or not the caller's; 409 already decided or expired; 422 invalid edited
        args or plan (nothing recorded). When it was the last pending approval of its pause,
        the resume is claimed and returned as `plan` (the caller starts the run with it).
        """
        now = self.clock.now()
        async with self.resources.sessionmaker() as session:
            approval = self._visible(
                await ApprovalRepository(session).get(approval_id), caller, approval_id
            )
        self._refuse_if_decided(approval)
        if approval.expires_at <= now:
            await self.expire([approval.id])
            raise Conflict(
                f"Approval {approval_id} expired at {approval.expires_at.isoformat()}; the "
                "call was not run.",
                code="approval_expired",
                meta={"approval_id": str(approval_id), "status": ApprovalStatus.expired.value},
            )
        edited: dict[str, Any] | None = None
        if decision == "modified" and approval.kind == ApprovalKind.plan.value:
            edited = await check_modified_plan(
                self.resources, approval, new_plan if new_plan is not None else args
            )
        elif decision == "modified":
            edited = self.validate_args(approval.tool, args or {})
        status = ApprovalStatus.rejected if decision == "rejected" else ApprovalStatus.approved
        kind = ApprovalEventKind(decision)
        async with self.resources.sessionmaker() as session:
            repo = ApprovalRepository(session)
            await repo.lock_run(approval.run_id)
            won = await repo.decide(
                approval_id,
                {
                    "status": status.value,
                    "edited_args": edited,
                    "decided_by": caller.id,
                    "decided_at": now,
                    "decision_reason": reason,
                },
            )
            if not won:
                await session.rollback()
                current = await ApprovalRepository(session).get(approval_id)
                self._refuse_if_decided(current or approval)
                raise Conflict(f"Approval {approval_id} was already decided.")
            await repo.add_event(
                ApprovalEvent(
                    approval_id=approval_id,
                    kind=kind.value,
                    actor_id=caller.id,
                    args=edited,
                    reason=reason,
                    created_at=now,
                )
            )
            plan = await self._claim_if_settled(session, approval.interrupt_id, now)
            await session.commit()
            decided = await repo.get(approval_id)
            group = await repo.in_interrupt(approval.interrupt_id)
            await self._publish_gauge(repo)
        assert decided is not None
        observe_approval_wait(
            (now - approval.requested_at).total_seconds(),
            "rejected" if status is ApprovalStatus.rejected else "approved",
        )
        log.info(
            "approval_decided",
            approval_id=str(approval_id),
            decision=decision,
            decided_by=str(caller.id),
            resumes=plan is not None,
        )
        await self._announce(DECIDED_EVENT, [decided])
        return DecisionResult(decided, plan, [a for a in group if a.status == PENDING])

    async def still_paused(self, result: DecisionResult) -> PausedTurn:
        """The turn a decision left waiting for the other approvals of its pause."""
        approval = result.approval
        async with self.resources.sessionmaker() as session:
            run = await session.get(AgentRun, approval.run_id)
        usage = (run.usage if run is not None else None) or {}
        return PausedTurn(
            conversation_id=approval.conversation_id,
            run_id=approval.run_id,
            interrupt_id=approval.interrupt_id,
            approvals=result.pending,
            tool_calls=[],
            usage={
                "input_tokens": int(usage.get("input_tokens") or 0),
                "output_tokens": int(usage.get("output_tokens") or 0),
            },
            duration_ms=0.0,
            model=(run.model if run is not None else None) or "",
        )

    @staticmethod
    def _refuse_if_decided(approval: Approval) -> None:
        if approval.status == PENDING:
            return
        if approval.status == ApprovalStatus.expired.value:
            raise Conflict(
                f"Approval {approval.id} expired; the call was not run.",
                code="approval_expired",
                meta={"approval_id": str(approval.id), "status": approval.status},
            )
        raise Conflict(
            f"Approval {approval.id} was already {approval.status}"
            + (f" at {approval.decided_at.isoformat()}" if approval.decided_at else "")
            + "; a decision cannot be changed.",
            code="approval_already_decided",
            meta={"approval_id": str(approval.id), "status": approval.status},
        )

    async def _claim_if_settled(
        self, session: AsyncSession, interrupt_id: str, now: datetime
    ) -> ResumePlan | None:
        """Within the decision's transaction: if no approval of the pause is pending, claim
        its resume and lock the conversation for the run. None when it must wait."""
        repo = ApprovalRepository(session)
        group = await repo.in_interrupt(interrupt_id)
        if not group or any(a.status == PENDING for a in group):
            return None
        first = group[0]
        if await repo.run_status(first.run_id) != RUN_AWAITING:
            return None
        if not await repo.claim_resume(interrupt_id, now):
            return None
        resume = {str(a.id): self._resume_value(a) for a in group}
        if not await RunEngine(self.resources).resume_in(session, first.run_id, resume):
            return None
        for approval in group:
            await repo.add_event(
                ApprovalEvent(
                    approval_id=approval.id, kind=ApprovalEventKind.resumed.value, created_at=now
                )
            )
        usage = await repo.run_usage(first.run_id) or {}
        return ResumePlan(
            run_id=first.run_id,
            conversation_id=first.conversation_id,
            user_id=first.user_id,
            interrupt_id=interrupt_id,
            resume=resume,
            usage_offset={
                "input_tokens": int(usage.get("input_tokens") or 0),
                "output_tokens": int(usage.get("output_tokens") or 0),
            },
        )

    @staticmethod
    def _resume_value(approval: Approval) -> dict[str, Any]:
        if approval.status == ApprovalStatus.expired.value:
            return {"decision": "rejected", "reason": EXPIRED}
        if approval.status == ApprovalStatus.rejected.value:
            return {"decision": "rejected", "reason": approval.decision_reason}
        if approval.edited_args is not None and approval.kind == ApprovalKind.plan.value:
            return {
                "decision": "modified",
                "plan": approval.edited_args,
                "reason": approval.decision_reason,
            }
        if approval.edited_args is not None:
            return {
                "decision": "modified",
                "args": approval.edited_args,
                "reason": approval.decision_reason,
            }
        return {"decision": "approved", "reason": approval.decision_reason}

    # Time: expiry and the sweeper ---------------------------------------------------------

    async def expire(self, approval_ids: Iterable[uuid.UUID]) -> list[ResumePlan]:
        """Expire these approvals if still pending (rejected, reason `expired`); returns the
        resumes claimed by doing so (started here)."""
        now = self.clock.now()
        plans: list[ResumePlan] = []
        for approval_id in approval_ids:
            async with self.resources.sessionmaker() as session:
                repo = ApprovalRepository(session)
                approval = await repo.get(approval_id)
                if approval is None or approval.status != PENDING:
                    continue
                await repo.lock_run(approval.run_id)
                if not await repo.decide(
                    approval_id,
                    {
                        "status": ApprovalStatus.expired.value,
                        "decided_at": now,
                        "decision_reason": EXPIRED,
                    },
                ):
                    await session.rollback()
                    continue
                await repo.add_event(
                    ApprovalEvent(
                        approval_id=approval_id,
                        kind=ApprovalEventKind.expired.value,
                        reason=EXPIRED,
                        created_at=now,
                    )
                )
                plan = await self._claim_if_settled(session, approval.interrupt_id, now)
                await session.commit()
                expired = await repo.get(approval_id)
                await self._publish_gauge(repo)
            observe_approval_wait((now - approval.requested_at).total_seconds(), "expired")
            log.info("approval_expired", approval_id=str(approval_id))
            if expired is not None:
                await self._announce(DECIDED_EVENT, [expired])
            if plan is not None:
                plans.append(plan)
                await self.start_resume(plan)
        return plans

    async def sweep(self) -> int:
        """One sweeper pass: expire overdue approvals and resume settled pauses nobody
        resumed. Returns how many approvals expired."""
        now = self.clock.now()
        async with self.resources.sessionmaker() as session:
            repo = ApprovalRepository(session)
            due = await repo.due(now)
            settled = await repo.settled_unresumed()
        await self.expire(due)
        if not due:
            async with self.resources.sessionmaker() as session:
                await self._publish_gauge(ApprovalRepository(session))
        for interrupt_id in settled:
            async with self.resources.sessionmaker() as session:
                repo = ApprovalRepository(session)
                group = await repo.in_interrupt(interrupt_id)
                if not group:
                    continue
                await repo.lock_run(group[0].run_id)
                plan = await self._claim_if_settled(session, interrupt_id, self.clock.now())
                await session.commit()
            if plan is not None:
                log.warning("approval_resume_recovered", interrupt_id=interrupt_id)
                await self.start_resume(plan)
        return len(due)

    # Resuming ---------------------------------------------------------------------------

    async def start_resume(self, plan: ResumePlan) -> AgentRun:
        """After the decision committed: wake a worker for the resumed run; returns its row."""
        engine = RunEngine(self.resources)
        run = await engine.get(plan.run_id, None)
        await engine.queued(run)
        return run

    # Notifications ------------------------------------------------------------------------

    async def _announce(self, event: str, approvals: Sequence[Approval]) -> None:
        """Tell SSE subscribers (every process) and the webhook; never fails the caller."""
        broker = self.resources.approval_events
        webhook = self.resources.approval_webhook
        for approval in approvals:
            payload = {"approval": approval_json(approval)}
            if broker is not None:
                try:
                    await broker.publish(
                        {"event": event, "user_id": str(approval.user_id), **payload}
                    )
                except Exception:
                    log.exception("approval_event_not_published", approval_id=str(approval.id))
            if webhook is not None:
                webhook.send(event, payload)

    async def _publish_gauge(self, repo: ApprovalRepository) -> None:
        try:
            set_approvals_pending(await repo.count_pending())
        except Exception:
            log.warning("approvals_gauge_not_updated")
