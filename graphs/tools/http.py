"""What the HTTP tools share: a client per call (or the configured one) and status handling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from graphs.tools.config import ToolConfig
from graphs.tools.registry import ToolError, TransientToolError

USER_AGENT = "MAI-tools/1.0"


@asynccontextmanager
async def http_client(config: ToolConfig) -> AsyncIterator[httpx.AsyncClient]:
    """The configured shared client, or a short-lived one closed after the call."""
    if config.http is not None:
        yield config.http
        return
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(config.tool_timeout_seconds),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    ) as client:
        yield client


def transport_failure(what: str, error: httpx.HTTPError) -> TransientToolError:
    """A connection-level failure (refused, reset, timed out) as a retryable tool error."""
    if isinstance(error, httpx.TimeoutException):
        return TransientToolError(f"{what} did not answer in time.")
    return TransientToolError(f"{what} could not be reached ({type(error).__name__}).")


def check_status(what: str, response: httpx.Response) -> None:
    """Raise a ToolError for an unsuccessful answer; 429 and 5xx are transient."""
    if response.is_success:
        return
    status = response.status_code
    detail = " ".join(response.text.split())[:300]
    message = f"{what} answered HTTP {status}" + (f": {detail}" if detail else ".")
    if status in (401, 403):
        raise ToolError(f"{what} refused the credentials (HTTP {status}); check its API key.")
    if status == 429 or status >= 500:
        raise TransientToolError(message)
    raise ToolError(message)
