"""Approvals' long-lived parts, set up in the lifespan after the agent runtime.

The send_email tool (approval-gated) joins the tool registry; live notifications and the
webhook sender are opened; the sweeper expires overdue approvals every
MAI_APPROVAL_SWEEP_SECONDS and resumes pauses a stopped process left behind.
"""

from __future__ import annotations

import asyncio
import contextlib

from app.core.logging import get_logger
from app.core.notify import Broker
from app.core.resources import Resources
from app.core.webhooks import WebhookSender
from app.services.approvals.mail import email_delivery
from app.services.approvals.service import ApprovalService
from graphs.tools.email import send_email_tool

log = get_logger(__name__)


async def _sweep_forever(resources: Resources) -> None:
    interval = resources.settings.approval_sweep_seconds
    while True:
        try:
            await ApprovalService(resources).sweep()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("approval_sweep_failed")
        await asyncio.sleep(interval)


async def start_approvals(resources: Resources) -> None:
    """Register send_email, open notifications and the webhook, start the sweeper.

    Cleanup goes on `resources.exit_stack` (run before the agent runtime's, which was
    registered earlier).
    """
    settings = resources.settings
    stack = resources.exit_stack
    if resources.tool_registry is not None:
        resources.tool_registry = resources.tool_registry.extended(
            send_email_tool(email_delivery(resources))
        )
    # Approvals react to interrupted runs: the engine hands them each pause to record.
    resources.runs.interrupt_handlers.append(ApprovalService(resources))
    broker = Broker(resources.redis, f"{settings.redis_prefix}approvals")
    await broker.start()
    stack.push_async_callback(broker.close)
    resources.approval_events = broker
    if settings.approval_webhook_url:
        secret = settings.approval_webhook_secret
        webhook = WebhookSender(
            resources.http,
            settings.approval_webhook_url,
            secret.get_secret_value() if secret is not None else None,
            max_attempts=settings.approval_webhook_max_attempts,
            backoff_seconds=settings.approval_webhook_backoff_seconds,
        )
        resources.approval_webhook = webhook
        stack.push_async_callback(webhook.close)
    sweeper = asyncio.create_task(_sweep_forever(resources), name="approval-sweeper")

    async def _stop() -> None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper

    stack.push_async_callback(_stop)
