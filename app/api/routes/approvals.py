"""/approvals: tool calls and plans waiting for a person; decide them and the run resumes."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api.deps import AdminUser, CallerDep, CurrentUser, PageDep, ResourcesDep, SessionDep
from app.api.schemas.agent import TurnOut
from app.api.schemas.approvals import (
    ApprovalDetailOut,
    ApprovalEventOut,
    ApprovalOut,
    ApprovalStatusName,
    ApproveIn,
    ModifyIn,
    OutboxEmailOut,
    RejectIn,
)
from app.api.schemas.common import PageOut
from app.api.sse import relay_events, sse_response
from app.api.streams import live_stream
from app.core.errors import ServiceUnavailable
from app.models import User
from app.repositories.approvals import OutboxRepository
from app.services.approvals import ApprovalService, DecisionResult
from app.services.runs import RunEngine

router = APIRouter(prefix="/api/v1/approvals", tags=["approvals"])

SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "SSE events"}
}
StreamFlag = Annotated[
    bool, Query(description="Answer as POST /agent/stream does (SSE) instead of JSON")
]


def get_approval_service(resources: ResourcesDep) -> ApprovalService:
    """Approval use cases."""
    return ApprovalService(resources)


ApprovalServiceDep = Annotated[ApprovalService, Depends(get_approval_service)]


async def _release_connection(session: SessionDep, _: CurrentUser) -> None:
    """Give the request's connection back once the caller is known: the service uses its
    own short sessions, and a resumed turn or an event stream can last long."""
    await session.close()


ReleaseConnection = Depends(_release_connection)


def _encode(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


async def _answer(
    result: DecisionResult, approvals: ApprovalService, stream: bool
) -> TurnOut | EventSourceResponse | JSONResponse:
    """Like POST /agent/query (or /stream): the resumed turn, or the pause still waiting.

    When the resumed run cannot finish now (the model is unreachable), the decision stays
    recorded and the run is retried in the background: 202 with the run id to follow.
    """
    resources = approvals.resources
    if result.plan is not None:
        run = await approvals.start_resume(result.plan)
        engine = RunEngine(resources)
        if stream:
            return sse_response(relay_events(engine.follow(run), run.id), resources)
        done = await engine.wait(run, until_retry=True)
        if done.status in ("success", "interrupted") and done.result:
            return TurnOut.model_validate(done.result)
        if done.status in ("pending", "running"):
            return JSONResponse(
                {
                    "run_id": str(done.id),
                    "conversation_id": str(done.conversation_id),
                    "status": done.status,
                    "detail": "The decision is recorded; the run resumes once the model is "
                    "reachable again. Follow it at GET /api/v1/agent/runs/{run_id}.",
                },
                status_code=202,
                headers={"Location": f"/api/v1/agent/runs/{done.id}"},
            )
        raise engine.error_of(done)
    paused = await approvals.still_paused(result)
    if not stream:
        return TurnOut.model_validate(paused.as_json())

    async def waiting() -> AsyncIterator[ServerSentEvent]:
        meta = {"run_id": str(paused.run_id), "conversation_id": str(paused.conversation_id)}
        yield ServerSentEvent(data=_encode(meta), event="metadata")
        yield ServerSentEvent(data=_encode(paused.interrupt_event()), event="updates")
        yield ServerSentEvent(data="null", event="end")

    return sse_response(waiting(), resources)


@router.get("")
async def list_approvals(
    user: CurrentUser,
    approvals: ApprovalServiceDep,
    page: PageDep,
    status: Annotated[ApprovalStatusName | None, Query(description="Only this status")] = None,
) -> PageOut[ApprovalOut]:
    """Approvals, newest first: your own, or everyone's for an admin."""
    items, total = await approvals.page(user, status=status, limit=page.limit, offset=page.offset)
    return PageOut[ApprovalOut](
        items=[ApprovalOut.model_validate(a) for a in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


def _accepts(user: User) -> Any:
    own = str(user.id)

    def accepts(event: dict[str, Any]) -> bool:
        return bool(user.is_admin) or event.get("user_id") == own

    return accepts


@router.get(
    "/events",
    dependencies=[ReleaseConnection],
    response_class=EventSourceResponse,
    responses=SSE_RESPONSES,
)
async def approval_events(
    request: Request, caller: CallerDep, resources: ResourcesDep
) -> EventSourceResponse:
    """Live notifications (SSE): `approval.requested` and `approval.decided`, each carrying
    the approval; yours, or everyone's for an admin. Starts with `ready`; comment lines are
    heartbeats."""
    user = caller.user
    broker = resources.approval_events
    if broker is None:
        raise ServiceUnavailable("Approval notifications are not running.", code="not_ready")
    accepts = _accepts(user)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async with broker.subscribe(accepts) as queue:
            yield ServerSentEvent(data=_encode({"user_id": str(user.id)}), event="ready")
            while True:
                event = await queue.get()
                yield ServerSentEvent(
                    data=_encode({"approval": event.get("approval")}), event=event.get("event")
                )

    return sse_response(live_stream(request, caller, events()), resources)


@router.get("/outbox")
async def read_outbox(_: AdminUser, session: SessionDep, page: PageDep) -> PageOut[OutboxEmailOut]:
    """Admin: approved emails kept in the outbox (when no SMTP server is configured)."""
    items, total = await OutboxRepository(session).page(limit=page.limit, offset=page.offset)
    return PageOut[OutboxEmailOut](
        items=[OutboxEmailOut.model_validate(e) for e in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{approval_id}")
async def read_approval(
    approval_id: uuid.UUID, user: CurrentUser, approvals: ApprovalServiceDep
) -> ApprovalDetailOut:
    """One approval with its history (who decided what, when, with which arguments)."""
    approval, history = await approvals.get(user, approval_id)
    return ApprovalDetailOut.model_validate(
        ApprovalOut.model_validate(approval).model_dump()
        | {"history": [ApprovalEventOut.model_validate(e) for e in history]}
    )


@router.post(
    "/{approval_id}/approve",
    dependencies=[ReleaseConnection],
    response_model=TurnOut,
    responses=SSE_RESPONSES,
)
async def approve(
    approval_id: uuid.UUID,
    user: CurrentUser,
    approvals: ApprovalServiceDep,
    body: ApproveIn | None = None,
    stream: StreamFlag = False,
) -> TurnOut | EventSourceResponse | JSONResponse:
    """Approve the call as asked. Once no approval of its pause is pending the run resumes,
    and the answer is the finished turn (or its next pause) as POST /agent/query gives it."""
    reason = body.reason if body is not None else None
    result = await approvals.decide(user, approval_id, "approved", reason=reason)
    return await _answer(result, approvals, stream)


@router.post(
    "/{approval_id}/reject",
    dependencies=[ReleaseConnection],
    response_model=TurnOut,
    responses=SSE_RESPONSES,
)
async def reject(
    approval_id: uuid.UUID,
    user: CurrentUser,
    approvals: ApprovalServiceDep,
    body: RejectIn | None = None,
    stream: StreamFlag = False,
) -> TurnOut | EventSourceResponse | JSONResponse:
    """Reject the call: it does not run, and the model is told (with your reason)."""
    reason = body.reason if body is not None else None
    result = await approvals.decide(user, approval_id, "rejected", reason=reason)
    return await _answer(result, approvals, stream)


@router.post(
    "/{approval_id}/modify",
    dependencies=[ReleaseConnection],
    response_model=TurnOut,
    responses=SSE_RESPONSES,
)
async def modify(
    approval_id: uuid.UUID,
    body: ModifyIn,
    user: CurrentUser,
    approvals: ApprovalServiceDep,
    stream: StreamFlag = False,
) -> TurnOut | EventSourceResponse | JSONResponse:
    """Approve the call with edited arguments (422 when they do not fit the tool), or a plan
    approval with a new plan (422 `invalid_plan` naming its problems; nothing is recorded)."""
    result = await approvals.decide(
        user, approval_id, "modified", args=body.args, reason=body.reason, new_plan=body.plan
    )
    return await _answer(result, approvals, stream)
