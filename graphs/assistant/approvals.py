"""Human approval of tool calls: the policy, the interrupt payload, and the decisions.

When the model asks for calls that need approval, the `tools` node calls `interrupt()` once
with every such call of the turn (one approval each) BEFORE running anything, so no tool of
that round has run when the graph pauses. The run is resumed once every approval is decided,
with `Command(resume={approval_id: {"decision": "approved"|"rejected"|"modified",
"args": {...}, "reason": "..."}})`; the node then re-runs from its start, `interrupt()`
returns the decisions, and the round runs: approved calls as asked, modified ones with the
edited arguments, rejected (or expired) ones answered with a ToolMessage saying so.

Approval ids are uuid5(thread id, tool call id): stable across the node's re-run and
unique per conversation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from langchain_core.messages import ToolCall
from langgraph.config import get_config
from langgraph.types import interrupt
from pydantic import ValidationError
from typing_extensions import TypedDict

from graphs.tools import ToolSpec

INTERRUPT_KIND = "tool_approval"
APPROVAL_NAMESPACE = uuid.UUID("6d3c1f4e-2a8b-5c7d-9e0f-41a2b3c4d5e6")
DEFAULT_APPROVAL_TIMEOUT_SECONDS = 86_400.0
EXPIRED = "expired"

Decision = Literal["approved", "rejected", "modified"]


class ApprovalRequest(TypedDict):
    """One call waiting for a person: what the interrupt payload lists per call."""

    approval_id: str
    tool_call_id: str
    tool: str
    args: dict[str, Any]
    reason: str
    user_id: str
    conversation_id: str | None
    run_id: str | None
    requested_at: str
    expires_at: str


class ActionRequest(TypedDict):
    """One call as LangChain's human-in-the-loop middleware asks about it."""

    name: str
    args: dict[str, Any]
    description: str


class ReviewConfig(TypedDict):
    """Which decisions LangChain's human-in-the-loop clients may offer for a call."""

    action_name: str
    allowed_decisions: list[str]


class ApprovalInterrupt(TypedDict):
    """The interrupt value: every call of this round that needs approval, in MAI's shape
    (`approvals`) and in LangChain's human-in-the-loop shape (`action_requests` and
    `review_configs`, in the same order), so Agent Chat UI and other HITL clients render it."""

    kind: str
    approvals: list[ApprovalRequest]
    action_requests: list[ActionRequest]
    review_configs: list[ReviewConfig]


# LangChain's human-in-the-loop decision types as the decisions `_verdict` reads.
HITL_DECISIONS = {"approve": "approved", "edit": "modified", "reject": "rejected"}


class ApprovalDecision(TypedDict, total=False):
    """A person's decision on one approval (the resume value holds one per approval id)."""

    decision: Decision
    args: dict[str, Any]
    reason: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the tools node does with one call: run it (with these args) or answer a refusal."""

    run: bool
    args: dict[str, Any]
    message: str = ""


def needs_approval(
    spec: ToolSpec, required: frozenset[str] | None, exempt: frozenset[str] | None
) -> bool:
    """The policy: listed as required → yes; listed as exempt → no; else the tool's flag."""
    if required and spec.name in required:
        return True
    if exempt and spec.name in exempt:
        return False
    return spec.requires_approval


def approval_id(thread_id: str, tool_call_id: str) -> str:
    """The approval id of a call: the same every time the node runs for this call."""
    return str(uuid.uuid5(APPROVAL_NAMESPACE, f"{thread_id}:{tool_call_id}"))


def thread_id_of(fallback: str | None) -> str:
    """The running thread's id (the conversation id for the service)."""
    try:
        configurable = get_config().get("configurable") or {}
    except RuntimeError:
        configurable = {}
    thread = configurable.get("thread_id")
    return str(thread) if thread is not None else (fallback or "no-thread")


def _valid(spec: ToolSpec, args: Mapping[str, Any]) -> bool:
    try:
        spec.args_schema.model_validate(dict(args))
    except ValidationError:
        return False
    return True


def rejection_text(tool: str, reason: str | None) -> str:
    """What the model reads for a call a person rejected or that expired."""
    if reason == EXPIRED:
        return (
            f"Not run: the approval request for this {tool} call expired before anyone "
            "decided on it. Tell the user it was not done."
        )
    why = f" Reason given: {reason}" if reason else " No reason was given."
    return f"Not run: a person rejected this {tool} call.{why} Tell the user it was not done."


def call_signature(tool: str, args: Mapping[str, Any]) -> str:
    """A call's identity for spotting a repeat: its tool and its arguments, keys sorted."""
    return json.dumps([tool, args], sort_keys=True, default=str)


def repeat_refusal_text(tool: str) -> str:
    """What the model reads when it asks again for a call a person refused in this turn."""
    return (
        f"Not run: a person already refused this exact {tool} call in this turn, so it was not "
        "asked again. Do not call it again; tell the user it was not done."
    )


def gate_calls(
    calls: Sequence[ToolCall],
    offered: Mapping[str, ToolSpec],
    *,
    refused: frozenset[str] = frozenset(),
    required: frozenset[str] | None,
    exempt: frozenset[str] | None,
    reason: str,
    user_id: str,
    conversation_id: str | None,
    run_id: str | None,
    now: datetime,
    timeout_seconds: float,
) -> dict[str, Verdict]:
    """Ask for approval of the calls that need it (pausing the run), and return a verdict per
    call id. Calls that need none run as asked.

    Calls to tools not offered, or with arguments their schema rejects, are not put to a
    person: they run (and fail) as usual without side effects. A call whose `call_signature`
    is in `refused` (a person refused it earlier in this turn; small models ask again and
    again) is refused at once instead of asking the person the same question.
    """
    thread = thread_id_of(conversation_id)
    requests: list[ApprovalRequest] = []
    for index, call in enumerate(calls):
        spec = offered.get(call["name"])
        if spec is None or not needs_approval(spec, required, exempt):
            continue
        if not _valid(spec, call["args"]):
            continue
        call_id = call.get("id") or f"call-{index}"
        requests.append(
            {
                "approval_id": approval_id(thread, call_id),
                "tool_call_id": call_id,
                "tool": call["name"],
                "args": dict(call["args"]),
                "reason": reason,
                "user_id": user_id,
                "conversation_id": conversation_id,
                "run_id": run_id,
                "requested_at": now.isoformat(),
                "expires_at": (now + timedelta(seconds=timeout_seconds)).isoformat(),
            }
        )
    verdicts = {
        (call.get("id") or f"call-{index}"): Verdict(run=True, args=dict(call["args"]))
        for index, call in enumerate(calls)
    }
    repeats = {
        request["tool_call_id"]
        for request in requests
        if call_signature(request["tool"], request["args"]) in refused
    }
    for request in requests:
        if request["tool_call_id"] in repeats:
            verdicts[request["tool_call_id"]] = Verdict(
                False, request["args"], repeat_refusal_text(request["tool"])
            )
    requests = [request for request in requests if request["tool_call_id"] not in repeats]
    if not requests:
        return verdicts
    payload: ApprovalInterrupt = {
        "kind": INTERRUPT_KIND,
        "approvals": requests,
        "action_requests": [
            {"name": r["tool"], "args": r["args"], "description": r["reason"]} for r in requests
        ],
        "review_configs": [
            {"action_name": r["tool"], "allowed_decisions": ["approve", "edit", "reject"]}
            for r in requests
        ],
    }
    # Pauses the run the first time; on resume returns the decisions (the node re-ran to here,
    # and nothing of this round has run yet).
    answer = interrupt(payload)
    decisions: Mapping[str, Any] = from_hitl(answer, requests)
    for request in requests:
        verdicts[request["tool_call_id"]] = _verdict(request, decisions.get(request["approval_id"]))
    return verdicts


def from_hitl(answer: Any, requests: list[ApprovalRequest]) -> Mapping[str, Any]:
    """The decisions by approval id: the resume value itself, or LangChain's
    `{"decisions": [{"type": "approve" | "edit" | "reject", ...}]}` (one per request, in
    order) when a client resumed the graph directly with it."""
    if not isinstance(answer, Mapping):
        return {}
    listed = answer.get("decisions")
    if not isinstance(listed, list):
        return answer
    found: dict[str, Any] = {}
    for request, decision in zip(requests, listed, strict=False):
        if not isinstance(decision, Mapping):
            continue
        edited = decision.get("edited_action")
        found[request["approval_id"]] = {
            "decision": HITL_DECISIONS.get(str(decision.get("type")), "rejected"),
            "args": edited.get("args") if isinstance(edited, Mapping) else decision.get("args"),
            "reason": decision.get("message"),
        }
    return found


def _verdict(request: ApprovalRequest, decision: Any) -> Verdict:
    if not isinstance(decision, Mapping):
        return Verdict(False, request["args"], rejection_text(request["tool"], "no decision"))
    kind = decision.get("decision")
    if kind == "approved":
        return Verdict(True, request["args"])
    if kind == "modified" and isinstance(decision.get("args"), Mapping):
        return Verdict(True, dict(decision["args"]))
    reason = decision.get("reason")
    return Verdict(
        False, request["args"], rejection_text(request["tool"], str(reason) if reason else None)
    )


def utc_now() -> datetime:
    """The current time (the default clock of a run)."""
    return datetime.now(UTC)
