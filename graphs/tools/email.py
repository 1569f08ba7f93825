"""The `send_email` tool: sends an email, only once a person has approved the call.

The tool itself only formats and hands the message to an `EmailDelivery` (the service passes
SMTP when MAI_SMTP_URL is set, else its outbox table). It is flagged `requires_approval`, so
the graph pauses before it runs and nothing is sent until a person approves the call.
Without a delivery (LangGraph Studio without the service) the tool is registered disabled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, EmailStr, Field

from graphs.tools.registry import ToolContext, ToolError, ToolRetry, ToolSpec

SEND_EMAIL = "send_email"


class SendEmailArgs(BaseModel):
    """Arguments of the send_email tool."""

    to: EmailStr = Field(description="The recipient's email address, e.g. ada@example.com.")
    # One line only: a CR/LF in a subject would let the caller inject mail headers (Bcc: ...).
    subject: str = Field(
        min_length=1, max_length=200, pattern=r"^[^\r\n]*$", description="The subject line."
    )
    body: str = Field(min_length=1, max_length=20_000, description="The plain-text message.")


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One email to deliver, and on whose behalf."""

    to: str
    subject: str
    body: str
    user_id: str


class EmailDeliveryError(ToolError):
    """The email could not be delivered; the message is what the model reads."""


@runtime_checkable
class EmailDelivery(Protocol):
    """Where approved emails go (SMTP, an outbox table...)."""

    async def deliver(self, email: OutgoingEmail) -> str:
        """Deliver `email`; return a short receipt for the model (raise EmailDeliveryError)."""


def send_email_tool(delivery: EmailDelivery | None) -> ToolSpec:
    """The send_email tool spec (disabled when there is no delivery to hand emails to)."""

    async def run(args: Any, context: ToolContext) -> str:
        if delivery is None:
            raise ToolError("Email delivery is not configured on this server.")
        email = OutgoingEmail(
            to=str(args.to), subject=args.subject, body=args.body, user_id=context.user_id
        )
        receipt = await delivery.deliver(email)
        return f"Email to {email.to} with subject {email.subject!r}: {receipt}"

    return ToolSpec(
        name=SEND_EMAIL,
        description=(
            "Send a plain-text email. A person must approve each email before it is sent; "
            "say in your message why the email should be sent."
        ),
        args_schema=SendEmailArgs,
        coroutine=run,
        category="communication",
        enabled=delivery is not None,
        disabled_reason=None if delivery is not None else "no email delivery configured",
        timeout_seconds=30.0,
        retry=ToolRetry(max_attempts=1),
        requires_approval=True,
        side_effects=True,
    )
