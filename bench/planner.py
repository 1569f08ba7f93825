"""Parallel plan execution vs the same steps run one after another, and the planner's overhead.

The scripted fake model (tests/fake_llm.py) answers every call after LATENCY seconds (200 ms by
default, awaited, as a network call would be). The plan has 5 sentiment steps (one model call
each): s1, s2, s3 independent, s4 after s1, s5 after s2, so the parallel run needs two rounds of
steps. The sequential run is the same plan with each step depending on the previous one. Both go
through the planner graph (plan call, steps, synthesis call) with a checkpointer, interleaved,
and the medians are compared:

  step phase ratio  = (parallel wall - plan - synthesis) / (sequential wall - plan - synthesis)
                      (target <= 0.5)
  outside steps     = sequential wall - the sum of the steps' durations (plan and synthesis
                      calls, checkpoints, scheduling)
  planner overhead  = sequential wall - the model time (7 calls x latency): what the graph,
                      checkpoints and scheduling add on top of the model calls.

    uv run python bench/planner.py [--runs 5] [--latency 0.2] [--backend memory|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphs.planner import Context, builder
from tests.fake_llm import ScriptedChatModel

SENTIMENT = {"label": "positive", "score": 0.5, "rationale": "Benchmark text."}


class SlowModel(ScriptedChatModel):
    """The scripted model with an awaited latency per call (concurrent calls overlap)."""

    latency: float = 0.2

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await asyncio.sleep(self.latency)
        return self._generate(messages, stop, None, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        await asyncio.sleep(self.latency)
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            yield chunk


def plan(sequential: bool) -> str:
    """The 5-step plan: s1-s3 independent, s4 after s1, s5 after s2 (or a chain)."""
    after = {"s4": ["s1"], "s5": ["s2"]}
    steps = []
    for index in range(1, 6):
        step_id = f"s{index}"
        depends = [f"s{index - 1}"] if sequential and index > 1 else after.get(step_id, [])
        steps.append(
            {
                "id": step_id,
                "agent": "sentiment",
                "instruction": f"Text number {index} is pleasant.",
                "depends_on": depends,
            }
        )
    return json.dumps({"steps": steps})


def model(sequential: bool, latency: float) -> SlowModel:
    """A model answering the plan, each sentiment step and the synthesis."""

    def respond(messages: Sequence[BaseMessage]) -> str:
        system = str(messages[0].content)
        if system.startswith("You plan how to fulfil"):
            return plan(sequential)
        if system.startswith("You analyse the sentiment"):
            return json.dumps(SENTIMENT)
        return "All five texts are positive."

    return SlowModel(respond=respond, latency=latency)


@asynccontextmanager
async def checkpointer(backend: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """InMemorySaver or AsyncSqliteSaver on a temp file."""
    if backend == "memory":
        yield InMemorySaver()
        return
    with tempfile.TemporaryDirectory() as directory:
        async with AsyncSqliteSaver.from_conn_string(str(Path(directory) / "c.db")) as saver:
            yield saver


async def one_run(graph: Any, sequential: bool, latency: float) -> tuple[float, float]:
    """Wall seconds of one planner run, and the sum of its step durations."""
    llm = model(sequential, latency)
    context = Context(llm=llm, approval="never", failure_policy="continue")
    config = {"configurable": {"thread_id": f"bench-{uuid.uuid4().hex}"}}
    started = time.perf_counter()
    result = await graph.ainvoke(
        {"messages": [HumanMessage(content="How do these five texts feel?")]},
        config,
        context=context,
    )
    wall = time.perf_counter() - started
    assert result["status"] == "completed", result
    assert len(llm.calls) == 7, len(llm.calls)
    steps = sum(r["duration_ms"] for r in result["results"].values()) / 1000
    return wall, steps


async def main(runs: int, latency: float, backend: str) -> None:
    """Interleave parallel and sequential runs; print the medians and the ratios."""
    async with checkpointer(backend) as saver:
        graph = builder.compile(checkpointer=saver)
        await one_run(graph, False, 0.0)  # warm-up: imports, prompt loading, schema building
        parallel: list[float] = []
        sequential: list[float] = []
        step_sums: list[float] = []
        for _ in range(runs):
            wall, _steps = await one_run(graph, False, latency)
            parallel.append(wall)
            wall, steps = await one_run(graph, True, latency)
            sequential.append(wall)
            step_sums.append(steps)
    par, seq = statistics.median(parallel), statistics.median(sequential)
    bookends = 2 * latency  # the plan call and the synthesis call, in both runs
    ratio = (par - bookends) / (seq - bookends)
    step_sum = statistics.median(step_sums)
    overhead = seq - 7 * latency
    print(f"backend={backend} runs={runs} model latency={latency * 1000:.0f} ms per call")
    print(f"parallel run   median {par * 1000:8.1f} ms")
    print(
        f"sequential run median {seq * 1000:8.1f} ms (sum of step times {step_sum * 1000:.1f} ms)"
    )
    print(f"step phase ratio parallel/sequential: {ratio:.2f}x (target <= 0.50x)")
    outside = seq - step_sum
    print(
        f"sequential run outside its steps (plan + synthesis calls + graph): "
        f"{outside * 1000:.1f} ms ({outside / step_sum * 100:.1f}% of the sum of step times)"
    )
    print(
        f"planner overhead over the model time: {overhead * 1000:.1f} ms per run "
        f"({overhead / (7 * latency) * 100:.1f}% of {7 * latency * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--backend", choices=["memory", "sqlite"], default="memory")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.latency, arguments.backend))
