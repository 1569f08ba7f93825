"""A planner run in a process of its own, for the restart test (which kills it with SIGKILL).

    python -m tests.graphs.planner_worker sqlite|postgres TARGET THREAD_ID LOG_FILE

The plan has three steps: `alpha` and `slow` in parallel, then `beta` after both. `alpha`
finishes at once, `slow` never does; every model call and capability call appends a line to
LOG_FILE so the test can count what ran in this process.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from graphs.planner import Context, StepCall, StepOutput, builder
from tests.graphs.planner_support import PlannerModel, done, plan_json, step

PLAN = plan_json(
    step("s1", "alpha", "quick part"),
    step("s2", "slow", "long part"),
    step("s3", "beta", "combine", ["s1", "s2"]),
)
REQUEST = "Do the quick part and the long part, then combine them."


@asynccontextmanager
async def saver(backend: str, target: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The durable checkpointer the worker and the test share."""
    if backend == "sqlite":
        async with AsyncSqliteSaver.from_conn_string(target) as sqlite:
            yield sqlite
        return
    async with AsyncPostgresSaver.from_conn_string(target) as postgres:
        await postgres.setup()
        yield postgres


async def main(backend: str, target: str, thread_id: str, log_file: str) -> None:
    """Run the plan until killed (the `slow` step never ends)."""
    log = Path(log_file)

    def note(line: str) -> None:
        with log.open("a") as handle:
            handle.write(line + "\n")

    model = PlannerModel(plan=PLAN, synthesis="never reached")
    original = model.llm.respond

    def respond(messages: Any) -> Any:
        reply = original(messages)
        note("model")
        return reply

    model.llm.respond = respond

    async def alpha(call: StepCall) -> StepOutput:
        """Does the quick part."""
        note("alpha")
        return done("alpha finished")

    async def slow(call: StepCall) -> StepOutput:
        """Does the long part."""
        note("slow")
        await asyncio.Event().wait()
        return done("unreachable")

    async def beta(call: StepCall) -> StepOutput:
        """Combines."""
        note("beta")
        return done("beta finished")

    context = Context(
        llm=model.llm,
        approval="never",
        failure_policy="continue",
        capabilities={"alpha": alpha, "slow": slow, "beta": beta},
    )
    async with saver(backend, target) as checkpointer:
        graph = builder.compile(checkpointer=checkpointer)
        await graph.ainvoke(
            {"messages": [HumanMessage(content=REQUEST)]},
            {"configurable": {"thread_id": thread_id}},
            context=context,
        )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
