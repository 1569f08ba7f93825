"""Running one tool call: argument validation, a timeout per attempt, and the retry policy.

Whatever happens, the outcome is text for the model and a status: a failing or slow tool never
raises into the graph (cancellation still propagates, so a cancelled run stops its tools).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from graphs.tools.registry import ToolContext, ToolError, ToolSpec, TransientToolError

ToolStatus = Literal["ok", "error", "timeout"]


@dataclass(frozen=True)
class ToolOutcome:
    """The result of one tool call as the model will read it, with how it went."""

    content: str
    status: ToolStatus
    attempts: int
    duration_ms: int


def _describe_validation(error: ValidationError) -> str:
    problems = []
    for item in error.errors()[:5]:
        where = ".".join(str(part) for part in item.get("loc", ())) or "arguments"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(problems)


async def run_tool(
    spec: ToolSpec, arguments: dict[str, Any], context: ToolContext, *, timeout: float
) -> ToolOutcome:
    """Run `spec` with `arguments`; `timeout` applies when the tool has no timeout of its own."""
    started = time.perf_counter()

    def outcome(content: str, status: ToolStatus, attempts: int) -> ToolOutcome:
        elapsed = int((time.perf_counter() - started) * 1000)
        return ToolOutcome(content=content, status=status, attempts=attempts, duration_ms=elapsed)

    try:
        args = spec.args_schema.model_validate(arguments)
    except ValidationError as error:
        return outcome(
            f"Invalid arguments for {spec.name}: {_describe_validation(error)}", "error", 0
        )
    limit = spec.timeout_seconds if spec.timeout_seconds is not None else timeout
    attempt = 0
    while True:
        attempt += 1
        retry_in = spec.retry.delay(attempt) if attempt < spec.retry.max_attempts else None
        try:
            async with asyncio.timeout(limit) as deadline:
                content = await spec.coroutine(args, context)
            return outcome(content, "ok", attempt)
        except TimeoutError:
            if not deadline.expired():
                # A timeout raised inside the tool (a socket, say): a failure, not our deadline.
                message = f"The tool {spec.name} failed: its peer timed out."
                if retry_in is None:
                    return outcome(message, "error", attempt)
            elif not spec.retry.retry_on_timeout or retry_in is None:
                return outcome(
                    f"The tool {spec.name} timed out after {limit:g} s and was stopped.",
                    "timeout",
                    attempt,
                )
        except TransientToolError as error:
            if retry_in is None:
                suffix = f" (after {attempt} attempts)" if attempt > 1 else ""
                return outcome(f"{error}{suffix}", "error", attempt)
        except ToolError as error:
            return outcome(str(error), "error", attempt)
        except Exception as error:
            return outcome(
                f"The tool {spec.name} failed: {type(error).__name__}: {error}", "error", attempt
            )
        await asyncio.sleep(retry_in)
