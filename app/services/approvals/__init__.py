"""Human approval of tool calls and planner plans: the durable approvals, their decisions, and
the sweeper."""

from app.services.approvals.runtime import start_approvals
from app.services.approvals.service import (
    DECIDED_EVENT,
    REQUESTED_EVENT,
    ApprovalService,
    DecisionResult,
    PausedTurn,
    ResumePlan,
    approval_json,
    interrupt_json,
)

__all__ = [
    "DECIDED_EVENT",
    "REQUESTED_EVENT",
    "ApprovalService",
    "DecisionResult",
    "PausedTurn",
    "ResumePlan",
    "approval_json",
    "interrupt_json",
    "start_approvals",
]
