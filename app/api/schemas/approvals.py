"""Request and response bodies of the approvals API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ApprovalStatusName = Literal["pending", "approved", "rejected", "expired"]
Reason = Annotated[str, Field(max_length=2000)]


class ApprovalOut(BaseModel):
    """A tool call, or a planner's plan, waiting for (or decided by) a person."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: Literal["tool", "plan"] = Field(
        default="tool", description="What waits: a tool call, or a planner's whole plan"
    )
    plan: dict[str, Any] | None = Field(
        default=None,
        description="A plan approval's plan: `steps` (id, agent, instruction, depends_on, "
        "tools), `estimated_cost_usd`, `requires_approval`, `rationale`",
    )
    status: ApprovalStatusName
    tool: str
    args: dict[str, Any] = Field(description="The arguments the model asked for")
    edited_args: dict[str, Any] | None = Field(
        default=None, description="The arguments a person approved instead (modify)"
    )
    reason: str | None = Field(default=None, description="The model's stated reason")
    user_id: uuid.UUID
    conversation_id: uuid.UUID
    run_id: uuid.UUID
    tool_call_id: str
    requested_at: datetime
    expires_at: datetime
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None


class ApprovalEventOut(BaseModel):
    """One entry of an approval's history."""

    model_config = ConfigDict(from_attributes=True)

    kind: Literal["requested", "approved", "modified", "rejected", "expired", "resumed"]
    actor_id: uuid.UUID | None = Field(default=None, description="Who did it (None: MAI)")
    args: dict[str, Any] | None = None
    reason: str | None = None
    created_at: datetime


class ApprovalDetailOut(ApprovalOut):
    """An approval with its history."""

    history: list[ApprovalEventOut]


class ApproveIn(BaseModel):
    """Approve the call as the model asked for it."""

    reason: Reason | None = None


class RejectIn(BaseModel):
    """Reject the call; the reason is shown to the model (and so to the user)."""

    reason: Reason | None = None


class ModifyIn(BaseModel):
    """Approve with changes: a tool call with edited `args` (checked against the tool's
    schema), or a plan approval with a new `plan` (validated like the planner's own)."""

    args: dict[str, Any] | None = None
    plan: dict[str, Any] | None = Field(
        default=None, description="The plan to run instead (plan approvals): {steps: [...]}"
    )
    reason: Reason | None = None


class OutboxEmailOut(BaseModel):
    """An approved email kept in the outbox (no SMTP server configured)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID | None
    to: str
    subject: str
    body: str
    created_at: datetime
