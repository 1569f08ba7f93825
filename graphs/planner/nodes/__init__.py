"""The planner's nodes, one module per stage."""

from graphs.planner.nodes.approve import approve
from graphs.planner.nodes.execute import execute, run_step
from graphs.planner.nodes.plan import begin, plan
from graphs.planner.nodes.synthesize import synthesize
from graphs.planner.nodes.validate import validate

__all__ = ["approve", "begin", "execute", "plan", "run_step", "synthesize", "validate"]
