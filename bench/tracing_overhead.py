"""What run instrumentation adds to a turn: the metrics callback, and Langfuse tracing.

The assistant graph runs in-process with a zero-latency scripted model (tests/fake_llm.py) that
streams a long answer word by word, three ways interleaved in the same run so drift hits all
alike: baseline (no callbacks), + the metrics callback (app.core.run_metrics), + the metrics
callback and Langfuse tracing (app.core.tracing) exporting to a closed port, i.e. Langfuse down.
Prints the median turn time of each and the ratios to the baseline. With a real model the
per-token cost (Langfuse's callback runs in a worker thread per event) is small next to the
model's own time per token.

    uv run python bench/tracing_overhead.py [--turns 30] [--tokens 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from app.core.config import Settings
from app.core.run_metrics import GraphMetricsHandler
from app.core.tracing import Tracing, start_tracing
from graphs.assistant import Context, builder
from tests.fake_llm import scripted


async def one_turn(tracing: Tracing, metrics: bool, answer: str) -> float:
    """Seconds for one direct turn streamed like the service streams it."""
    graph = builder.compile(checkpointer=InMemorySaver())
    run_id = str(uuid.uuid4())
    model = scripted({"route": "direct"}, answer)
    started = time.perf_counter()
    with tracing.trace_run(
        graph="assistant", run_id=run_id, user_id="bench", conversation_id=run_id, model="m"
    ) as trace:
        callbacks: list[BaseCallbackHandler] = [*trace.callbacks]
        if metrics:
            callbacks.append(GraphMetricsHandler("m"))
        async for _ in graph.astream(
            {"messages": [HumanMessage("hi")]},
            config={"configurable": {"thread_id": run_id}, "callbacks": callbacks},
            context=Context(llm=model, model="m"),
            stream_mode=["messages", "updates", "values"],
        ):
            pass
    return time.perf_counter() - started


async def main(turns: int, tokens: int) -> None:
    """Measure the three variants interleaved and print medians and ratios."""
    answer = " ".join(f"word{i}" for i in range(tokens))
    stack = contextlib.AsyncExitStack()
    traced = start_tracing(
        Settings(
            _env_file=None,
            langfuse_public_key=f"pk-bench-{uuid.uuid4().hex[:8]}",
            langfuse_secret_key="sk-bench",  # noqa: S106 (nothing listens there)
            langfuse_host="http://127.0.0.1:9",
        ),
        stack,
    )
    off = Tracing()
    variants = {
        "baseline": (off, False),
        "metrics": (off, True),
        "metrics+langfuse": (traced, True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for tracing, metrics in variants.values():  # warm-up
        await one_turn(tracing, metrics, answer)
    for _ in range(turns):
        for name, (tracing, metrics) in variants.items():
            times[name].append(await one_turn(tracing, metrics, answer))
    base = statistics.median(times["baseline"])
    print(f"turn with {tokens} streamed tokens, median of {turns}:")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:18} {median * 1000:8.1f} ms  {median / base:5.2f}x")
    await stack.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--tokens", type=int, default=300)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.turns, arguments.tokens))
