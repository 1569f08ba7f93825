"""The `approve` node: a person approves, rejects or modifies the plan before anything runs.

When approval is needed (see `approval_reasons`) the node calls `interrupt()` with a
`PlanApprovalRequest`. Resume with `Command(resume=...)` holding one decision, either directly
or keyed by the approval id (the shape the assistant's tool approvals use):

    {"decision": "approved"}
    {"decision": "rejected", "reason": "too expensive"}
    {"decision": "modified", "plan": {"steps": [...], ...}, "reason": "..."}

A modified plan is validated like the model's; an invalid one (or an unreadable decision) asks
again, with the error in the new request's `error`, and the plan stays as it was. The node
re-runs from its start on resume, so it does nothing before `interrupt()` returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from typing_extensions import TypedDict

from graphs.assistant.approvals import APPROVAL_NAMESPACE, EXPIRED, thread_id_of
from graphs.planner.context import Context, context_of
from graphs.planner.nodes.validate import check_plan
from graphs.planner.state import Approval, PlanData, PlannerState
from graphs.planner.tools import registry_of

INTERRUPT_KIND = "plan_approval"


class PlanApprovalRequest(TypedDict):
    """The interrupt value: the plan, why it needs a person, and who asked."""

    kind: str
    approval_id: str
    plan: PlanData
    reasons: list[str]
    error: str | None
    user_id: str
    conversation_id: str | None
    run_id: str | None
    requested_at: str
    expires_at: str


def approval_reasons(plan: PlanData, context: Context) -> list[str]:
    """Why this plan needs a person's approval under the run's policy (empty: it does not)."""
    if context.approval == "never":
        return []
    if context.approval == "always":
        return ["every plan needs approval (approval policy: always)"]
    reasons: list[str] = []
    if plan["requires_approval"]:
        reasons.append("the planner marked this plan as needing approval")
    tools = registry_of(context)
    required = context.assistant_context().approval_required or frozenset()
    for step in plan["steps"]:
        for name in step["tools"]:
            spec = tools.get(name)
            if name in required or (spec is not None and spec.requires_approval):
                reasons.append(f"step {step['id']} uses {name}, which needs approval")
    if plan["estimated_cost_usd"] > context.approval_cost_usd:
        reasons.append(
            f"the estimated cost ${plan['estimated_cost_usd']:.4f} is above "
            f"${context.approval_cost_usd:.4f}"
        )
    return reasons


def plan_approval_id(thread_id: str, revision: int) -> str:
    """The approval id of one revision of the thread's current plan."""
    return str(uuid.uuid5(APPROVAL_NAMESPACE, f"{thread_id}:plan:{revision}"))


def _decision(answer: Any, approval_id: str) -> Mapping[str, Any]:
    if isinstance(answer, Mapping) and "decision" not in answer and approval_id in answer:
        answer = answer[approval_id]
    return answer if isinstance(answer, Mapping) else {}


def _rejected(approval_id: str, reason: str | None) -> dict[str, Any]:
    why = "it expired before anyone decided" if reason == EXPIRED else None
    text = "The plan was not run: a person rejected it."
    if why:
        text = f"The plan was not run: {why}."
    elif reason:
        text += f" Reason given: {reason}"
    approval: Approval = {"approval_id": approval_id, "decision": "rejected", "reason": reason}
    return {
        "approval": approval,
        "status": "rejected",
        "answer": text,
        "messages": [AIMessage(content=text)],
        "plan_error": None,
    }


def approve(state: PlannerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask a person about the plan when the policy says so; apply their decision."""
    context = context_of(runtime)
    plan = state["plan"]
    reasons = approval_reasons(plan, context)
    if not reasons:
        approval: Approval = {"approval_id": None, "decision": "not_required", "reason": None}
        return {"approval": approval, "plan_error": None}
    revision = state.get("revision", 0)
    approval_id = plan_approval_id(thread_id_of(context.conversation_id), revision)
    now = context.now()
    request: PlanApprovalRequest = {
        "kind": INTERRUPT_KIND,
        "approval_id": approval_id,
        "plan": plan,
        "reasons": reasons,
        "error": state.get("plan_error"),
        "user_id": context.user_id,
        "conversation_id": context.conversation_id,
        "run_id": context.run_id,
        "requested_at": now.isoformat(),
        "expires_at": (now + timedelta(seconds=context.approval_timeout_seconds)).isoformat(),
    }
    decision = _decision(interrupt(request), approval_id)
    kind = decision.get("decision")
    reason = decision.get("reason")
    reason_text = str(reason) if reason else None
    if kind == "approved":
        approval = {"approval_id": approval_id, "decision": "approved", "reason": reason_text}
        return {"approval": approval, "plan_error": None}
    if kind == "rejected":
        return _rejected(approval_id, reason_text)
    if kind == "modified":
        modified, error = check_plan(decision.get("plan"), context)
        if modified is None:
            return {
                "plan_error": f"the modified plan is not valid: {error}",
                "revision": revision + 1,
            }
        approval = {"approval_id": approval_id, "decision": "modified", "reason": reason_text}
        return {"approval": approval, "plan": modified, "plan_error": None}
    return {
        "plan_error": (
            "unreadable decision: resume with {'decision': 'approved' | 'rejected' | "
            "'modified'} (and 'plan' when modified)"
        ),
        "revision": revision + 1,
    }
