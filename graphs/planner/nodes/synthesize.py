"""The `synthesize` node: one answer from the step results, with citations numbered once.

Citations of every step are merged into one list (the same passage cited by two steps gets one
number) and each step's [n] markers are rewritten to those numbers before the model sees them.
A plan of one successful step answers with that step's result; a plan where nothing succeeded,
or that the fail_fast policy stopped, answers with what failed, without another model call.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

import prompts
from graphs.assistant.llm import chat_model
from graphs.assistant.messages import add_usage, text_of
from graphs.assistant.state import Citation
from graphs.planner.context import Context, context_of
from graphs.planner.nodes.plan import latest_request
from graphs.planner.state import PlannerState, RunStatus, StepResult

SYNTHESIS = prompts.load("plan_synthesis")
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def _key(citation: Citation) -> tuple[str, int | None, str]:
    return citation["document_id"], citation.get("page"), citation["snippet"]


def merge_citations(results: list[StepResult]) -> tuple[list[Citation], list[StepResult]]:
    """One numbered list of every step's citations, and the results with markers renumbered."""
    merged: list[Citation] = []
    numbers: dict[tuple[str, int | None, str], int] = {}
    renumbered: list[StepResult] = []
    for result in results:
        local: dict[int, int] = {}
        for citation in result["citations"]:
            key = _key(citation)
            if key not in numbers:
                numbers[key] = len(merged) + 1
                merged.append({**citation, "number": numbers[key]})
            local[citation["number"]] = numbers[key]

        def renumber(match: re.Match[str], local: dict[int, int] = local) -> str:
            parts = [local.get(int(piece), int(piece)) for piece in match.group(1).split(",")]
            return "[" + ", ".join(str(number) for number in parts) + "]"

        text = _MARKER.sub(renumber, result["text"]) if local else result["text"]
        renumbered.append({**result, "text": text})
    return merged, renumbered


def cited(answer: str, catalog: list[Citation]) -> list[Citation]:
    """The citations of `catalog` that `answer` cites, in the order first cited."""
    by_number = {citation["number"]: citation for citation in catalog}
    seen: list[Citation] = []
    for match in _MARKER.finditer(answer):
        for piece in match.group(1).split(","):
            citation = by_number.get(int(piece))
            if citation is not None and citation not in seen:
                seen.append(citation)
    return seen


def failure_note(results: list[StepResult]) -> str:
    """One line per step that did not succeed."""
    lines = [
        f"- step {result['step_id']} ({result['agent']}): {result['status']}, {result['error']}"
        for result in results
        if result["status"] != "ok"
    ]
    return "Not completed:\n" + "\n".join(lines) if lines else ""


def _finish(
    answer: str, status: RunStatus, citations: list[Citation], **extra: Any
) -> dict[str, Any]:
    return {
        "answer": answer,
        "status": status,
        "citations": citations,
        "messages": [AIMessage(content=answer)],
        **extra,
    }


async def synthesize(state: PlannerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write the answer from the results (in plan order) and set the run's status."""
    context = context_of(runtime)
    stored = state.get("results") or {}
    ordered = [stored[step["id"]] for step in state["plan"]["steps"] if step["id"] in stored]
    catalog, results = merge_citations([r for r in ordered if r["status"] == "ok"])
    succeeded = [r for r in ordered if r["status"] == "ok"]
    failed = [r for r in ordered if r["status"] != "ok"]
    note = failure_note(ordered)
    stopped = bool(failed) and context.failure_policy == "fail_fast"
    if stopped or not succeeded:
        done = ", ".join(r["step_id"] for r in succeeded) or "none"
        answer = f"I could not complete the request.\n{note}\nSteps finished: {done}."
        return _finish(answer, "failed", [])
    status: RunStatus = "partial" if failed else "completed"
    if len(state["plan"]["steps"]) == 1:
        only = results[0]
        return _finish(only["text"], status, cited(only["text"], catalog) or catalog)
    request = latest_request(state)
    steps = [
        {
            "id": step["id"],
            "agent": step["agent"],
            "instruction": step["instruction"],
            "status": stored[step["id"]]["status"] if step["id"] in stored else "skipped",
            "text": next((r["text"] for r in results if r["step_id"] == step["id"]), ""),
            "error": stored[step["id"]]["error"] if step["id"] in stored else "not run",
        }
        for step in state["plan"]["steps"]
    ]
    messages = [
        SystemMessage(content=SYNTHESIS.render(steps=steps, citations=catalog)),
        HumanMessage(content=text_of(request) if request is not None else ""),
    ]
    llm = await chat_model(context.assistant_context())
    reply = await llm.ainvoke(messages)
    answer = text_of(reply).strip() or "\n\n".join(r["text"] for r in results)
    if note:
        answer = f"{answer}\n\n{note}"
    usage = add_usage(None, reply, messages)
    return _finish(answer, status, cited(answer, catalog), usage=usage)
