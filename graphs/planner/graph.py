"""The planner graph: wiring and routers only (the nodes live in `nodes/`).

    START -> begin -> plan -> validate -(invalid, first time)-> plan
                                       \\-(valid)-> approve -(rejected)-> END
                                                          \\-(bad modification)-> approve
                                                          \\-> execute
    execute -(Send, one per ready step)-> run_step -> execute
            \\-(nothing left to run)-> synthesize -> END

`builder` is exported for callers that compile with their own checkpointer (the service, tests);
`graph` is compiled without one, for `langgraph.json`.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from graphs.planner.context import Context, context_of
from graphs.planner.nodes import approve, begin, execute, plan, run_step, synthesize, validate
from graphs.planner.state import InputState, OutputState, PlannerState, StepTask


def after_validate(state: PlannerState) -> Literal["plan", "approve"]:
    """Send an invalid draft back to the model once (validate fails the run the second time)."""
    return "plan" if state.get("plan_error") else "approve"


def after_approve(state: PlannerState) -> Literal["approve", "execute", "__end__"]:
    """Run an approved plan, stop on a rejection, ask again after an unusable decision."""
    if state.get("plan_error"):
        return "approve"
    approval = state.get("approval")
    if approval is not None and approval["decision"] == "rejected":
        return "__end__"
    return "execute"


def next_steps(
    state: PlannerState, runtime: Runtime[Context]
) -> list[Send] | Literal["synthesize"]:
    """One `Send` per step whose dependencies all succeeded; synthesize when none is left."""
    results = state.get("results") or {}
    if context_of(runtime).failure_policy == "fail_fast" and any(
        result["status"] != "ok" for result in results.values()
    ):
        return "synthesize"
    sends: list[Send] = []
    for step in state["plan"]["steps"]:
        if step["id"] in results:
            continue
        needed = [results.get(dependency) for dependency in step["depends_on"]]
        if all(result is not None and result["status"] == "ok" for result in needed):
            task: StepTask = {"step": step, "inputs": [r for r in needed if r is not None]}
            sends.append(Send("run_step", task))
    return sends or "synthesize"


builder = StateGraph(
    PlannerState, context_schema=Context, input_schema=InputState, output_schema=OutputState
)
builder.add_node("begin", begin)
builder.add_node("plan", plan)
builder.add_node("validate", validate)
builder.add_node("approve", approve)
builder.add_node("execute", execute)
builder.add_node("run_step", run_step, input_schema=StepTask)
builder.add_node("synthesize", synthesize)
builder.add_edge(START, "begin")
builder.add_edge("begin", "plan")
builder.add_edge("plan", "validate")
builder.add_conditional_edges("validate", after_validate)
builder.add_conditional_edges("approve", after_approve, ["approve", "execute", END])
builder.add_conditional_edges("execute", next_steps, ["run_step", "synthesize"])
builder.add_edge("run_step", "execute")
builder.add_edge("synthesize", END)

graph = builder.compile(name="planner")
