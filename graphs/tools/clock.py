"""The `current_time` tool: the current date and time, in UTC or an IANA time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from graphs.tools.registry import ToolContext, ToolError, ToolRetry, ToolSpec


class CurrentTimeArgs(BaseModel):
    """Arguments of the current_time tool."""

    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="An IANA time zone such as 'Europe/Paris'; UTC if omitted.",
    )


def describe_now(timezone: str | None, now: datetime | None = None) -> str:
    """The time `now` (default: the current time) in `timezone`, as ISO 8601 plus words."""
    name = (timezone or "UTC").strip() or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(
            f"Unknown time zone {name!r}. Use an IANA name such as 'Europe/Paris', "
            "'America/New_York' or 'UTC'."
        ) from None
    moment = (now or datetime.now(UTC)).astimezone(zone)
    offset = moment.strftime("%z")
    return (
        f"{moment.isoformat(timespec='seconds')} "
        f"({moment.strftime('%A %d %B %Y, %H:%M:%S')} in {name}, UTC{offset[:3]}:{offset[3:]})"
    )


async def _run(args: Any, context: ToolContext) -> str:
    return describe_now(args.timezone)


def current_time_tool() -> ToolSpec:
    """The current_time tool spec."""
    return ToolSpec(
        name="current_time",
        description=(
            "Get the current date and time, in UTC or in an IANA time zone such as "
            "'Europe/Paris'. Use it for questions about today, now, or dates relative to today."
        ),
        args_schema=CurrentTimeArgs,
        coroutine=_run,
        category="time",
        timeout_seconds=5.0,
        retry=ToolRetry(max_attempts=1),
    )
