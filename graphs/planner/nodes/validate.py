"""The `validate` node: a plan must be a DAG of known capabilities, or the model tries once more.

`check_plan` is also what a person's modified plan goes through before it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from graphlib import CycleError, TopologicalSorter
from typing import Any

from langgraph.runtime import Runtime

from graphs.planner.context import Context, context_of
from graphs.planner.state import Plan, PlanData, PlannerState, StepData
from graphs.planner.tools import Capability, capabilities_of, registry_of
from graphs.structured import parse_as


class PlanInvalid(ValueError):
    """The model could not produce a valid plan, even when shown what was wrong."""


def _problems(plan: Plan, agents: Mapping[str, Capability], context: Context) -> list[str]:
    problems: list[str] = []
    if len(plan.steps) > context.max_steps:
        problems.append(f"the plan has {len(plan.steps)} steps; at most {context.max_steps}")
    ids = [step.id for step in plan.steps]
    duplicates = sorted({step_id for step_id in ids if ids.count(step_id) > 1})
    if duplicates:
        problems.append(f"step ids must be unique: {', '.join(duplicates)} repeated")
    known = set(ids)
    tools = registry_of(context)
    for step in plan.steps:
        if step.agent not in agents:
            problems.append(
                f"step {step.id}: unknown agent {step.agent!r}; use one of {', '.join(agents)}"
            )
        for dependency in step.depends_on:
            if dependency == step.id:
                problems.append(f"step {step.id} depends on itself")
            elif dependency not in known:
                problems.append(f"step {step.id} depends on {dependency!r}, which is no step")
        for tool in step.tools:
            spec = tools.get(tool)
            if spec is None or not spec.enabled:
                problems.append(f"step {step.id}: unknown or disabled tool {tool!r}")
    if problems:
        return problems
    graph = {step.id: set(step.depends_on) for step in plan.steps}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        cycle = " -> ".join(str(node) for node in error.args[1])
        problems.append(f"the steps depend on each other in a cycle: {cycle}")
    return problems


def check_plan(data: Any, context: Context) -> tuple[PlanData | None, str | None]:
    """The plan as stored (with its estimated cost), or None and every problem found."""
    plan, error = parse_as(Plan, data)
    if plan is None:
        return None, error
    problems = _problems(plan, capabilities_of(context), context)
    if problems:
        return None, "; ".join(problems)
    steps: list[StepData] = [
        {
            "id": step.id,
            "agent": step.agent,
            "instruction": step.instruction,
            "depends_on": list(dict.fromkeys(step.depends_on)),
            "tools": list(step.tools),
        }
        for step in plan.steps
    ]
    return {
        "steps": steps,
        "requires_approval": plan.requires_approval,
        "estimated_cost_usd": round(len(steps) * context.step_cost_usd, 6),
        "rationale": plan.rationale,
    }, None


MAX_PLAN_ATTEMPTS = 2


def validate(state: PlannerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Accept the draft, send it back once with the problems, or fail with `PlanInvalid`."""
    context = context_of(runtime)
    error = state.get("plan_error")
    plan: PlanData | None = None
    if error is None:
        plan, error = check_plan(state.get("draft"), context)
    if plan is not None:
        return {"plan": plan, "plan_error": None}
    if state.get("plan_attempts", 0) >= MAX_PLAN_ATTEMPTS:
        raise PlanInvalid(
            "The planner could not make a valid plan for this request, even after showing the "
            f"model what was wrong: {error}"
        )
    return {"plan_error": error}
