"""What the agent API adds to a turn: HTTP API vs the same graph in-process, SQLite and PostgreSQL.

One turn with a zero-latency scripted model (tests/fake_llm.py), measured two ways in the same run
on the same app instance, checkpointer and compiled graph:
  api:        POST /api/v1/agent/query through the ASGI app (auth, rate limit, conversation lock,
              run bookkeeping, message storage, JSON);
  in-process: `agent_graph.ainvoke(...)` with the same checkpointer and a fresh thread.
The two are interleaved so drift hits both alike. Then 20 streams run concurrently and must all
end with `values` + `end` and no `error`. Target: api/in-process <= 2x at p50 on PostgreSQL.

    uv run python bench/agent_overhead.py [--turns 200] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
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
from app.core.resources import Resources
from app.main import create_app
from bench.common import REDIS_URL, percentile, redis_available, scratch_database
from graphs.assistant import Context
from tests.api.agent_helpers import parse_sse
from tests.fake_llm import responding

ANSWER = "Sure, here is a short answer to your question."
CONCURRENT_STREAMS = 20


def respond(messages: list[BaseMessage]) -> str:
    """Zero-latency model: route every turn directly, answer with one short sentence."""
    first = str(messages[0].content) if messages else ""
    if first.startswith("Decide how the assistant should handle"):
        return '{"route": "direct"}'
    return ANSWER


async def run_backend(name: str, settings: Settings, turns: int) -> dict[str, Any]:
    """Measure api vs in-process on one backend; run the concurrent streams."""
    model = responding(respond)
    app = create_app(settings, chat_model=model)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        resources: Resources = app.state.resources
        graph = resources.agent_graph
        assert graph is not None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=60
        ) as client:
            email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
            reply = await client.post(
                "/api/v1/auth/register",
                json={"email": email, "password": "bench-password-1"},
            )
            reply.raise_for_status()
            headers = {"Authorization": f"Bearer {reply.json()['access_token']}"}

            async def api_turn() -> float:
                started = time.perf_counter()
                response = await client.post(
                    "/api/v1/agent/query", json={"message": "Hello there?"}, headers=headers
                )
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.text
                assert response.json()["answer"] == ANSWER
                return elapsed * 1000

            async def direct_turn() -> float:
                assert resources.chat_models is not None
                resolved = await resources.chat_models.get()
                started = time.perf_counter()
                state = await graph.ainvoke(
                    {"messages": [HumanMessage(content="Hello there?")]},
                    config={"configurable": {"thread_id": str(uuid.uuid4())}},
                    # Checkpointed as the engine checkpoints a run, so the ratio is the API's.
                    durability=settings.run_durability,
                    context=Context(
                        user_id="bench",
                        model=resolved.name,
                        llm=resolved.chat_model,
                        tools=resources.tool_registry,
                        retriever=resources.retriever,
                    ),
                )
                elapsed = time.perf_counter() - started
                assert state["answer"] == ANSWER
                return elapsed * 1000

            for _ in range(10):  # warm-up: imports, pools, prepared paths
                await api_turn()
                await direct_turn()
            api: list[float] = []
            direct: list[float] = []
            for _ in range(turns):
                api.append(await api_turn())
                direct.append(await direct_turn())

            async def one_stream() -> tuple[bool, str]:
                response = await client.post(
                    "/api/v1/agent/stream", json={"message": "Stream please"}, headers=headers
                )
                if response.status_code != 200:
                    return False, f"HTTP {response.status_code}: {response.text[:200]}"
                events, _ = parse_sse(response.text)
                names = [e.event for e in events]
                ok = (
                    names[:1] == ["metadata"]
                    and names[-2:] == ["values", "end"]
                    and "error" not in names
                    and events[-2].data["answer"] == ANSWER
                )
                return ok, ",".join(names[-3:])

            started = time.perf_counter()
            results = await asyncio.gather(*(one_stream() for _ in range(CONCURRENT_STREAMS)))
            streams_s = time.perf_counter() - started
    failures = [detail for ok, detail in results if not ok]
    return {
        "backend": name,
        "api_p50": statistics.median(api),
        "api_p95": percentile(api, 0.95),
        "direct_p50": statistics.median(direct),
        "direct_p95": percentile(direct, 0.95),
        "streams_ok": CONCURRENT_STREAMS - len(failures),
        "streams_failures": failures,
        "streams_s": streams_s,
    }


async def main() -> int:
    """Run the benchmark on the chosen backends and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    base: dict[str, Any] = {
        "env": "test",
        "log_level": "WARNING",
        "bcrypt_rounds": 4,
        "rate_limit_per_minute": 1_000_000,
        "auth_rate_limit_per_minute": 1_000_000,
        "llm_base_url": "http://127.0.0.1:9/v1",
        # The concurrent streams are one user's: let them all open.
        "max_streams_per_user": CONCURRENT_STREAMS,
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mai-bench-") as tmp:
        if args.backend in ("sqlite", "both"):
            settings = Settings(_env_file=None, data_dir=Path(tmp) / "sqlite", **base)
            rows.append(await run_backend("sqlite", settings, args.turns))
        if args.backend in ("postgres", "both"):
            redis = REDIS_URL if await redis_available() else None
            async with scratch_database() as url:
                settings = Settings(
                    _env_file=None,
                    data_dir=Path(tmp) / "postgres",
                    database_url=url,
                    redis_url=redis,
                    redis_prefix=f"mai-bench:{uuid.uuid4().hex[:8]}:",
                    **base,
                )
                row = await run_backend(
                    "postgres" + ("+redis" if redis else ""), settings, args.turns
                )
                rows.append(row)
    print(f"agent turn, zero-latency model, {args.turns} turns each (ms)")
    print(
        f"{'backend':<16}{'api p50':>9}{'api p95':>9}{'graph p50':>11}{'graph p95':>11}"
        f"{'ratio p50':>11}   {CONCURRENT_STREAMS} concurrent streams"
    )
    worst: float | None = None
    streams_ok = True
    for row in rows:
        ratio = row["api_p50"] / row["direct_p50"]
        if row["backend"].startswith("postgres"):
            worst = max(worst or 0.0, ratio)
        streams_ok &= row["streams_ok"] == CONCURRENT_STREAMS
        print(
            f"{row['backend']:<16}{row['api_p50']:>9.2f}{row['api_p95']:>9.2f}"
            f"{row['direct_p50']:>11.2f}{row['direct_p95']:>11.2f}{ratio:>10.2f}x"
            f"   {row['streams_ok']}/{CONCURRENT_STREAMS} ok in {row['streams_s']:.2f}s"
        )
        for failure in row["streams_failures"][:3]:
            print(f"    stream failure: {failure}")
    if worst is None:
        print("target (postgres api/graph p50 <= 2x): not measured (run with --backend postgres)")
        return 0 if streams_ok else 1
    verdict = worst <= 2.0 and streams_ok
    print(
        f"target (postgres api/graph p50 <= 2x, streams all ok): {'met' if verdict else 'NOT met'}"
    )
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
