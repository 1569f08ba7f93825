"""The moderation graph: wiring and routers only.

    START -> prepare -> toxicity ----------------------> verdict -> END
                     \\-> pii -(sanitize selected)-> sanitize -/
                              \\-(not selected)-------------/

Toxicity and PII detection run in parallel; `verdict` is deferred, so it runs once, after every
selected stage. Sanitizing needs the PII findings: selecting `sanitize` alone runs `pii` too.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from graphs.moderation.context import Context
from graphs.moderation.nodes import pii, prepare, sanitize, toxicity, verdict
from graphs.moderation.state import InputState, ModerationState, OutputState


def first_stages(state: ModerationState) -> list[Literal["toxicity", "pii"]]:
    """The stages that start at once (in parallel)."""
    selected = state.get("selected", [])
    stages: list[Literal["toxicity", "pii"]] = []
    if "toxicity" in selected:
        stages.append("toxicity")
    if "pii" in selected or "sanitize" in selected:
        stages.append("pii")
    return stages


def after_pii(state: ModerationState) -> Literal["sanitize", "verdict"]:
    """Mask the findings when sanitizing was asked for."""
    return "sanitize" if "sanitize" in state.get("selected", []) else "verdict"


builder = StateGraph(
    ModerationState, context_schema=Context, input_schema=InputState, output_schema=OutputState
)
builder.add_node("prepare", prepare)
builder.add_node("toxicity", toxicity)
builder.add_node("pii", pii)
builder.add_node("sanitize", sanitize)
builder.add_node("verdict", verdict, defer=True)
builder.add_edge(START, "prepare")
builder.add_conditional_edges("prepare", first_stages, ["toxicity", "pii"])
builder.add_edge("toxicity", "verdict")
builder.add_conditional_edges("pii", after_pii)
builder.add_edge("sanitize", "verdict")
builder.add_edge("verdict", END)

graph = builder.compile(name="moderation")
