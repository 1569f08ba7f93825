"""The MAI planner: turns a request into a DAG of steps, gets it approved, runs it, answers.

`builder` (a StateGraph) and `graph` (compiled without a checkpointer) are what callers use;
the service compiles `builder.compile(checkpointer=...)` and passes a `Context` per run.
"""

from graphs.planner.context import Context, StepCall
from graphs.planner.graph import builder, graph
from graphs.planner.nodes.approve import INTERRUPT_KIND, PlanApprovalRequest
from graphs.planner.nodes.execute import EVENT_KIND, StepEvent
from graphs.planner.nodes.validate import PlanInvalid, check_plan
from graphs.planner.state import (
    InputState,
    OutputState,
    Plan,
    PlanData,
    PlannerState,
    PlanStep,
    StepOutput,
    StepResult,
)
from graphs.planner.tools import Capability, StepFailed

__all__ = [
    "EVENT_KIND",
    "INTERRUPT_KIND",
    "Capability",
    "Context",
    "InputState",
    "OutputState",
    "Plan",
    "PlanApprovalRequest",
    "PlanData",
    "PlanInvalid",
    "PlanStep",
    "PlannerState",
    "StepCall",
    "StepEvent",
    "StepFailed",
    "StepOutput",
    "StepResult",
    "builder",
    "check_plan",
    "graph",
]
