"""Plan approvals: a planner run paused on its plan becomes one approval of kind "plan".

The planner's `approve` node interrupts with a `PlanApprovalRequest` (kind "plan_approval",
its approval id, the plan, why it needs a person). That request is stored like a tool call's:
the plan goes in `args`, the reasons in `reason`. A modified plan is checked with the
planner's own validation (`check_plan`, under the run's context) before it is recorded, so an
invalid one is refused with the problems named and the approval stays pending.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.core.errors import Unprocessable
from app.core.resources import Resources
from app.models import AgentRun, Approval
from app.services.runs.context import build_context

# The kind of the planner's interrupt value (graphs.planner.INTERRUPT_KIND; the planner
# package is imported only when a plan is checked, so this module loads fast).
PLAN_INTERRUPT_KIND = "plan_approval"


def is_plan_request(value: Any) -> bool:
    """Whether an interrupt value is a planner's request to approve its plan."""
    return isinstance(value, Mapping) and value.get("kind") == PLAN_INTERRUPT_KIND


async def check_modified_plan(
    resources: Resources, approval: Approval, plan: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The modified plan as the planner will run it (with its estimated cost), or 422
    `invalid_plan` naming every problem (the approval stays pending)."""
    from graphs.planner import Context as PlannerContext
    from graphs.planner import check_plan

    if not plan:
        raise Unprocessable(
            'A modified plan is required: send {"plan": {"steps": [...]}}.',
            code="invalid_plan",
            meta={"errors": ["plan: missing"]},
        )
    async with resources.sessionmaker() as session:
        run = await session.get(AgentRun, approval.run_id)
    assert resources.graphs is not None, "the run engine is not started"
    context: Any = None
    if run is not None:
        context = build_context(resources, run, None, resources.graphs.get(run.graph_id))
    if not isinstance(context, PlannerContext):
        context = PlannerContext(user_id=str(approval.user_id), tools=resources.tool_registry)
    checked, error = check_plan(dict(plan), context)
    if checked is None:
        raise Unprocessable(
            f"The modified plan is not valid: {error}.",
            code="invalid_plan",
            meta={"errors": [part.strip() for part in str(error).split(";") if part.strip()]},
        )
    return dict(checked)
