"""The run engine, measured on PostgreSQL + Redis with real processes.

1. Queue overhead per run: one in-process app; `POST /api/v1/agent/query` (auth, queue row,
   claim, lease, event log, stored answer) vs `graph.ainvoke` of the same compiled graph,
   interleaved, zero-latency scripted model; p50/p95 and the ratio.
2. Throughput: an API-only `mai serve` and 1, then 2, `mai worker` processes; 20 and 100
   concurrent streaming runs against an OpenAI-compatible test server that answers after
   `--llm-ms`; runs/s and the ratio 2 workers / 1 worker.
3. Recovery: kill -9 of the worker executing runs; time until another worker has resumed them
   (status `running`, attempt 2) and until they all ended `success`.

    uv run python bench/runs.py [--turns 100] [--sizes 20,100] [--llm-ms 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from langchain_core.messages import BaseMessage, HumanMessage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import Settings
from app.core.db import create_engine, upgrade_schema
from bench.common import (
    REDIS_URL,
    create_database,
    drop_database,
    free_port,
    mai_env,
    processes,
    start_mai,
    stop,
    summary,
    wait_ready,
)
from graphs.assistant import Context
from tests.api.agent_helpers import parse_sse
from tests.fake_llm import responding
from tests.observability.openai_server import OpenAIServer

ANSWER = "Sure, here is a short answer."


def respond(messages: list[BaseMessage]) -> str:
    """Zero-latency model: route directly, answer one sentence."""
    first = str(messages[0].content) if messages else ""
    return '{"route": "direct"}' if first.startswith("Decide how the assistant") else ANSWER


async def queue_overhead(url: str, turns: int, tmp: Path) -> tuple[list[float], list[float]]:
    """Engine vs direct graph call, interleaved, in one process."""
    from app.main import create_app

    settings = Settings(
        _env_file=None,
        data_dir=tmp / "overhead",
        database_url=url,
        redis_url=REDIS_URL,
        redis_prefix=f"bench-{uuid.uuid4().hex[:6]}:",
        bcrypt_rounds=4,
        log_level="WARNING",
        rate_limit_per_minute=1_000_000,
        llm_base_url="http://127.0.0.1:9/v1",
    )
    app = create_app(settings, chat_model=responding(respond))
    engine_ms: list[float] = []
    direct_ms: list[float] = []
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        resources = app.state.resources
        graph = resources.graphs.get("assistant").graph
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b", timeout=60) as c:
            token = (
                await c.post(
                    "/api/v1/auth/register",
                    json={"email": "bench@example.com", "password": "bench-password-1"},
                )
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            resolved = await resources.chat_models.get()
            for i in range(turns + 10):
                started = time.perf_counter()
                answer = await c.post(
                    "/api/v1/agent/query", json={"message": "Hello?"}, headers=headers
                )
                api = (time.perf_counter() - started) * 1000
                assert answer.status_code == 200, answer.text
                started = time.perf_counter()
                await graph.ainvoke(
                    {"messages": [HumanMessage(content="Hello?")]},
                    config={"configurable": {"thread_id": str(uuid.uuid4())}},
                    context=Context(
                        user_id="bench",
                        model=resolved.name,
                        llm=resolved.chat_model,
                        tools=resources.tool_registry,
                        retriever=resources.retriever,
                    ),
                )
                direct = (time.perf_counter() - started) * 1000
                if i >= 10:  # warm-up
                    engine_ms.append(api)
                    direct_ms.append(direct)
    return engine_ms, direct_ms


async def stream_runs(base: str, headers: dict[str, str], count: int) -> float:
    """`count` concurrent streaming runs; returns runs per second (all must succeed)."""
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:

        async def one(i: int) -> None:
            response = await client.post(
                "/api/v1/agent/stream", json={"message": f"question {i}"}, headers=headers
            )
            assert response.status_code == 200, response.text
            events, _ = parse_sse(response.text)
            assert [e.event for e in events][-2:] == ["values", "end"], response.text[-300:]

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - started)


def login(base: str) -> dict[str, str]:
    """Register a bench user and return its auth header."""
    email = f"bench-{uuid.uuid4().hex[:6]}@example.com"
    reply = httpx.post(
        f"{base}/api/v1/auth/register",
        json={"email": email, "password": "bench-password-1"},
        timeout=30,
    )
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def throughput_and_recovery(
    url: str, sizes: list[int], llm_ms: int, tmp: Path
) -> dict[Any, Any]:
    """Runs/s with 1 and 2 worker processes; then kill -9 of a worker."""

    def slow(_body: dict[str, Any]) -> str:
        time.sleep(llm_ms / 1000)
        return ANSWER

    llm = OpenAIServer(structured={"route": "direct"}, respond=slow)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = mai_env(
        MAI_DATABASE_URL=url,
        MAI_REDIS_URL=REDIS_URL,
        MAI_REDIS_PREFIX=f"bench-{uuid.uuid4().hex[:6]}:",
        MAI_LLM_BASE_URL=llm.base_url,
        MAI_LLM_MODEL="test-model",
        MAI_BCRYPT_ROUNDS="4",
        MAI_LOG_LEVEL="WARNING",
        MAI_RATE_LIMIT_PER_MINUTE="1000000",
        MAI_RUN_LEASE_SECONDS="3",
    )
    results: dict[Any, Any] = {}
    try:
        with processes() as started:
            api = start_mai(
                ["serve", "--port", str(port)],
                {**env, "MAI_DATA_DIR": str(tmp / "api"), "MAI_RUN_WORKERS_ENABLED": "false"},
                tmp / "api.log",
            )
            started.append(api)
            wait_ready(base, api)
            headers = login(base)
            workers: list[subprocess.Popen[bytes]] = []
            for count in (1, 2):
                while len(workers) < count:
                    n = len(workers) + 1
                    worker = start_mai(
                        ["worker"], {**env, "MAI_DATA_DIR": str(tmp / f"w{n}")}, tmp / f"w{n}.log"
                    )
                    started.append(worker)
                    workers.append(worker)
                await stream_runs(base, headers, 4)  # warm-up: the new worker is up
                for size in sizes:
                    results[(count, size)] = await stream_runs(base, headers, size)

            # Recovery: keep runs in flight, kill -9 the first worker, watch them resume.
            async with httpx.AsyncClient(base_url=base, timeout=600) as client:
                runs = [
                    asyncio.create_task(
                        client.post(
                            "/api/v1/agent/query", json={"message": "long"}, headers=headers
                        )
                    )
                    for _ in range(8)
                ]
                await asyncio.sleep(llm_ms / 1000 / 2 + 0.5)
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait(timeout=10)
                killed = time.perf_counter()
                done = await asyncio.gather(*runs)
                results["recovered_s"] = time.perf_counter() - killed
                results["recovered_ok"] = sum(r.status_code == 200 for r in done)
            for worker in workers[1:]:
                stop(worker)
    finally:
        llm.close()
    return results


async def main() -> int:
    """Run every measure and print them."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--sizes", default="20,100")
    parser.add_argument("--llm-ms", type=int, default=200)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="mai-bench-runs-") as folder:
        tmp = Path(folder)
        url = await create_database()
        try:
            engine = create_engine(Settings(_env_file=None, database_url=url))
            await upgrade_schema(engine)
            await engine.dispose()
            engine_ms, direct_ms = await queue_overhead(url, args.turns, tmp)
            measured = await throughput_and_recovery(url, sizes, args.llm_ms, tmp)
        finally:
            await drop_database(url)
    print("queue overhead per run (PostgreSQL + Redis, zero-latency model)")
    print(f"  engine (POST /query): {summary(engine_ms)}")
    print(f"  direct graph call:    {summary(direct_ms)}")
    ratio = statistics.median(engine_ms) / statistics.median(direct_ms)
    print(f"  ratio engine/direct p50: {ratio:.2f}x")
    print(f"throughput (model answers after {args.llm_ms} ms)")
    for size in sizes:
        one, two = measured[(1, size)], measured[(2, size)]
        print(
            f"  {size:4d} concurrent streams: 1 worker {one:6.1f} runs/s, "
            f"2 workers {two:6.1f} runs/s, ratio {two / one:.2f}x"
        )
    print(
        f"recovery: kill -9 of a worker with 8 runs in flight -> all done in "
        f"{measured['recovered_s']:.1f} s ({measured['recovered_ok']}/8 answered 200)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
