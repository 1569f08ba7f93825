"""LangGraph run webhooks: a run created with `webhook` is POSTed to that URL when it ends,
signed like the approval webhook (`X-MAI-Signature`, MAI_APPROVAL_WEBHOOK_SECRET)."""

from __future__ import annotations

import asyncio

from app.core.resources import Resources
from app.core.runs import RunOutcome
from app.core.webhooks import WebhookSender
from app.repositories.runs import RunRepository
from app.services.langgraph_api import run_json


def start_run_webhooks(resources: Resources) -> None:
    """Register the hook that delivers run webhooks (in the background, retried)."""
    settings = resources.settings
    secret = settings.approval_webhook_secret
    deliveries: set[asyncio.Task[bool]] = set()

    async def deliver(outcome: RunOutcome) -> None:
        async with resources.sessionmaker() as session:
            run = await RunRepository(session).get(outcome.run_id)
        url = (run.kwargs or {}).get("webhook") if run is not None else None
        if run is None or not url:
            return
        sender = WebhookSender(
            resources.http,
            str(url),
            secret.get_secret_value() if secret is not None else None,
            max_attempts=settings.approval_webhook_max_attempts,
            backoff_seconds=settings.approval_webhook_backoff_seconds,
        )
        payload = run_json(run)
        if run.error_code:
            payload["error"] = {"code": run.error_code, "detail": run.error}
        # Kept until delivered: the event loop holds tasks only weakly.
        task = sender.send("run", payload)
        deliveries.add(task)
        task.add_done_callback(deliveries.discard)

    resources.runs.hooks.append(deliver)
