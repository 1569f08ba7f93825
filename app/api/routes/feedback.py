"""/feedback: rate assistant answers; admins list feedback and see its statistics."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.api.deps import AdminUser, ClockDep, CurrentUser, PageDep, ResourcesDep, SessionDep
from app.api.schemas.common import PageOut
from app.api.schemas.feedback import AdminFeedbackOut, FeedbackIn, FeedbackOut, FeedbackStatsOut
from app.models import Rating
from app.repositories.feedback import FeedbackFilter
from app.services.analytics import parse_range
from app.services.feedback import FeedbackInput, FeedbackService

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"])


def get_feedback_service(session: SessionDep, clock: ClockDep) -> FeedbackService:
    """Feedback use cases bound to this request's session."""
    return FeedbackService(session, clock)


FeedbackServiceDep = Annotated[FeedbackService, Depends(get_feedback_service)]


def _filters(
    resources: ResourcesDep,
    rating: Annotated[Rating | None, Query(description="up or down")] = None,
    tag: Annotated[str | None, Query(max_length=64, description="Has this tag")] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Given by this user")] = None,
    start: Annotated[
        str | None, Query(alias="from", description="Given at or after (date or ISO time, UTC)")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", description="Given before; a date includes that day")
    ] = None,
) -> FeedbackFilter:
    span = parse_range(start, end, "day", resources.clock.now()) if start or end else None
    return FeedbackFilter(
        rating=rating,
        tag=tag.strip().lower() if tag else None,
        user_id=user_id,
        start=span.start if span else None,
        end=span.end if span else None,
    )


FeedbackFilterDep = Annotated[FeedbackFilter, Depends(_filters)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Your earlier feedback on this message was updated"}},
)
async def submit_feedback(
    body: FeedbackIn, user: CurrentUser, feedback: FeedbackServiceDep, response: Response
) -> FeedbackOut:
    """Rate an assistant message of your own conversation (201); sending again updates it (200)."""
    stored, created = await feedback.submit(
        user,
        FeedbackInput(
            message_id=body.message_id,
            rating=body.rating,
            score=body.score,
            comment=body.comment,
            tags=body.tags,
        ),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return FeedbackOut.model_validate(stored)


@router.get("")
async def list_feedback(
    _: AdminUser, filters: FeedbackFilterDep, page: PageDep, feedback: FeedbackServiceDep
) -> PageOut[AdminFeedbackOut]:
    """All feedback, newest first, filtered by rating, tag, user and date range (admin)."""
    items, total = await feedback.list_page(filters, limit=page.limit, offset=page.offset)
    return PageOut[AdminFeedbackOut](
        items=[AdminFeedbackOut.of(item, model) for item, model in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/stats", response_model_by_alias=True)
async def feedback_stats(
    _: AdminUser, filters: FeedbackFilterDep, feedback: FeedbackServiceDep
) -> FeedbackStatsOut:
    """Up/down counts and shares per day and per model, average score, top tags (admin)."""
    return FeedbackStatsOut.model_validate(await feedback.stats(filters))
