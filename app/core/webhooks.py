"""Signed webhooks delivered in the background, retried with exponential backoff.

`send` returns at once: delivery runs in a task, so a slow or failing receiver never blocks the
caller. The body is JSON; `X-MAI-Signature` is the HMAC-SHA256 hex digest of the exact body
bytes with the shared secret (receivers recompute it and compare in constant time).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx

from app.core.logging import get_logger

log = get_logger(__name__)

SIGNATURE_HEADER = "X-MAI-Signature"


def sign(body: bytes, secret: str) -> str:
    """The HMAC-SHA256 hex digest of `body` with `secret`."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """POSTs events to one URL; each delivery is retried until it gets a 2xx or gives up."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        secret: str | None,
        *,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.http = http
        self.url = url
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(self, event: str, payload: dict[str, Any]) -> asyncio.Task[bool]:
        """Queue one delivery of `{"event": event, **payload}`; returns its task."""
        delivery = str(uuid.uuid4())
        body = json.dumps(
            {"event": event, "delivery_id": delivery, **payload},
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "MAI-Webhook/1",
            "X-MAI-Event": event,
            "X-MAI-Delivery": delivery,
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.secret)
        task = asyncio.create_task(self._deliver(event, delivery, body, headers))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _deliver(
        self, event: str, delivery: str, body: bytes, headers: dict[str, str]
    ) -> bool:
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = await self.http.post(
                    self.url, content=body, headers=headers, timeout=self.timeout_seconds
                )
                if response.is_success:
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            if attempt == self.max_attempts:
                log.warning(
                    "webhook_gave_up",
                    webhook_event=event,
                    delivery=delivery,
                    attempts=attempt,
                    error=problem,
                )
                return False
            log.info(
                "webhook_retry",
                webhook_event=event,
                delivery=delivery,
                attempt=attempt,
                error=problem,
            )
            await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        return False

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the deliveries in flight (tests; shutdown grace)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def close(self, grace_seconds: float = 2.0) -> None:
        """Give deliveries in flight a moment, then cancel the rest."""
        if not self._tasks:
            return
        _, still = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=5)
