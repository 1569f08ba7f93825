"""/analytics: the caller's usage and budget; for admins, the whole service and any user."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from app.api.deps import AdminUser, CurrentUser, ResourcesDep, SessionDep
from app.api.schemas.agent import GraphId
from app.api.schemas.analytics import SystemReportOut, UsageReportOut, UserUsageReportOut
from app.services.analytics import AnalyticsService, UsageRange, parse_range

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


def get_analytics_service(resources: ResourcesDep, session: SessionDep) -> AnalyticsService:
    """Analytics use cases bound to this request's session."""
    return AnalyticsService(resources, session)


AnalyticsServiceDep = Annotated[AnalyticsService, Depends(get_analytics_service)]


def get_usage_range(
    resources: ResourcesDep,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description="Start (UTC unless a zone is given): 2026-01-01 or 2026-01-01T08:00:00Z. "
            "Default: 30 days before `to`.",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            description="End, exclusive; a date includes that whole day. Default: end of today.",
        ),
    ] = None,
    granularity: Annotated[
        Literal["day", "week", "month"], Query(description="Bucket size (weeks start Monday)")
    ] = "day",
    graph: Annotated[
        GraphId | None,
        Query(description="Only the agent turns of this graph (langgraph.json id), e.g. planner"),
    ] = None,
) -> UsageRange:
    """The validated range (400 when from is not before to or the range is over a year)."""
    return parse_range(start, end, granularity, resources.clock.now(), graph)


UsageRangeDep = Annotated[UsageRange, Depends(get_usage_range)]


@router.get("/usage", response_model_by_alias=True)
async def my_usage(
    user: CurrentUser, span: UsageRangeDep, analytics: AnalyticsServiceDep
) -> UsageReportOut:
    """Your turns, tokens and cost over a range, in buckets, with your daily budget."""
    return UsageReportOut.model_validate(await analytics.usage(user, span))


@router.get("/system", response_model_by_alias=True)
async def system_usage(
    _: AdminUser, span: UsageRangeDep, analytics: AnalyticsServiceDep
) -> SystemReportOut:
    """Totals, active users, per-model and per-tool breakdowns, error rate, latency (admin)."""
    return SystemReportOut.model_validate(await analytics.system(span))


@router.get("/users/{user_id}", response_model_by_alias=True)
async def user_usage(
    user_id: uuid.UUID, _: AdminUser, span: UsageRangeDep, analytics: AnalyticsServiceDep
) -> UserUsageReportOut:
    """One user's usage and budget (admin)."""
    return UserUsageReportOut.model_validate(await analytics.user_usage(user_id, span))
