"""The `tools` node: runs the model's tool calls concurrently and records each run.

Calls that need human approval pause the run first (see `graphs.assistant.approvals`).

Every call gets its own timeout and retry policy (`graphs.tools.run_tool`); a tool that fails,
times out or does not exist answers the model with an error ToolMessage instead of ending the
run. Passages found by kb_search are numbered for the whole turn and kept in `passages`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import AIMessage, ToolCall, ToolMessage
from langgraph.runtime import Runtime

from graphs.assistant.approvals import Verdict, call_signature, gate_calls
from graphs.assistant.context import Context, context_of
from graphs.assistant.messages import text_of
from graphs.assistant.state import AssistantState, ToolRun, ToolRunStatus
from graphs.assistant.toolset import offered_tools
from graphs.knowledge import PassageBook
from graphs.tools import (
    LedgerEntry,
    ToolContext,
    ToolOutcome,
    ToolSpec,
    ToolStatus,
    run_tool,
)

MIN_RESULT_CHARS = 1000


def result_limit(context: Context, calls: int) -> int:
    """Characters one tool result may keep: its share of about a quarter of the window."""
    return max(MIN_RESULT_CHARS, context.context_tokens // max(calls, 1))


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + f"\n… (truncated: {len(text)} characters in all)"


async def _run_call(
    call: ToolCall,
    offered: dict[str, ToolSpec],
    tool_context: ToolContext,
    context: Context,
) -> ToolOutcome:
    spec = offered.get(call["name"])
    if spec is None:
        available = ", ".join(offered) or "none"
        return ToolOutcome(
            content=(
                f"The tool {call['name']!r} is not available for this question. "
                f"Available tools: {available}."
            ),
            status="error",
            attempts=0,
            duration_ms=0,
        )
    ledger = context.tool_ledger
    call_id = call.get("id") or ""
    once = ledger is not None and bool(call_id) and (spec.side_effects or spec.requires_approval)
    if once:
        assert ledger is not None
        recorded = await ledger.claim(call_id, spec.name)
        if recorded is not None:
            # This call already ran (before a crash, retry or resume): report that, not again.
            status: ToolStatus = "ok" if recorded.status == "ok" else "error"
            return ToolOutcome(content=recorded.content, status=status, attempts=0, duration_ms=0)
    outcome = await run_tool(spec, call["args"], tool_context, timeout=context.tool_timeout_seconds)
    if once:
        assert ledger is not None
        if outcome.status == "timeout":
            await ledger.release(call_id)
        else:
            await ledger.record(call_id, spec.name, LedgerEntry(outcome.content, outcome.status))
    return outcome


async def _settle(
    call: ToolCall,
    verdict: Verdict,
    offered: dict[str, ToolSpec],
    tool_context: ToolContext,
    context: Context,
) -> tuple[str, ToolRunStatus, int]:
    """Run an approved (or ungated) call with its final arguments; answer a refused one."""
    if not verdict.run:
        return verdict.message, "rejected", 0
    final: ToolCall = {**call, "args": verdict.args}
    outcome = await _run_call(final, offered, tool_context, context)
    return outcome.content, outcome.status, outcome.duration_ms


async def tools(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the last AI message's tool calls in parallel; answer each with a ToolMessage.

    Calls that need a person's approval (`graphs.assistant.approvals`) pause the run with one
    `interrupt()` listing them, before ANY call of the round runs: this node re-runs from its
    start on resume, so nothing may have happened before the decisions are in. Rejected or
    expired calls are answered with a ToolMessage saying so (ToolRun status "rejected"), and
    the same call asked again in this turn is refused without asking again; modified ones run
    with the edited arguments.
    """
    context = context_of(runtime)
    last = state["messages"][-1]
    calls = list(last.tool_calls) if isinstance(last, AIMessage) else []
    offered = {spec.name: spec for spec in offered_tools(context, state.get("route", "direct"))}
    refused = frozenset(
        call_signature(run["name"], run["args"])
        for run in state.get("tool_runs", [])
        if run["status"] == "rejected"
    )
    verdicts = gate_calls(
        calls,
        offered,
        refused=refused,
        required=context.approval_required,
        exempt=context.approval_exempt,
        reason=text_of(last).strip() if isinstance(last, AIMessage) else "",
        user_id=context.user_id,
        conversation_id=context.conversation_id,
        run_id=context.run_id,
        now=context.now(),
        timeout_seconds=context.approval_timeout_seconds,
    )
    book = PassageBook(state.get("passages", []))
    tool_context = ToolContext(
        user_id=context.user_id,
        retriever=context.retriever,
        top_k=context.top_k,
        passages=book,
        store=runtime.store,
        memory=context.memory,
        conversation_id=context.conversation_id,
        clock=context.clock,
    )
    keys = [call.get("id") or f"call-{index}" for index, call in enumerate(calls)]
    settled = await asyncio.gather(
        *(
            _settle(call, verdicts[key], offered, tool_context, context)
            for call, key in zip(calls, keys, strict=True)
        )
    )
    limit = result_limit(context, len(calls))
    messages: list[ToolMessage] = []
    runs: list[ToolRun] = list(state.get("tool_runs", []))
    for call, key, (text, status, duration_ms) in zip(calls, keys, settled, strict=True):
        content = _shorten(text, limit)
        call_id = call.get("id") or ""
        messages.append(
            ToolMessage(
                content=content,
                tool_call_id=call_id,
                name=call["name"],
                status="success" if status == "ok" else "error",
            )
        )
        runs.append(
            {
                "id": call_id,
                "name": call["name"],
                "args": dict(verdicts[key].args),
                "result": content,
                "duration_ms": duration_ms,
                "status": status,
            }
        )
    return {
        "messages": messages,
        "tool_runs": runs,
        "iterations": state.get("iterations", 0) + 1,
        "passages": book.passages,
    }
