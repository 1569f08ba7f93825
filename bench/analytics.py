"""Analytics benchmark: aggregate latency over many usage events, uncached vs cached.

Fills the usage_events table with synthetic agent turns (default 100,000 events of 200 users over
90 days, a third of them calling tools) and times, through the HTTP API of one app instance:
  GET /analytics/system  (admin: totals, active users, per-model and per-tool, p50/p95)
  GET /analytics/usage   (one user's totals and daily buckets, with the budget)
each computed from the database (MAI_ANALYTICS_CACHE_SECONDS=0, the baseline) and served from
the cache, in the same run. Then it records one event and checks the next answer changed
(invalidation). Prints p50 in milliseconds and the cached/uncached ratio.

    uv run python bench/analytics.py [--events 100000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import Settings
from app.core.resources import Resources
from app.main import create_app
from app.models import Role, UsageEvent, User
from app.services.analytics import AnalyticsService
from bench.common import REDIS_URL, scratch_database

MODELS = ["gpt-4o-mini", "gpt-4o", "llama-3.2-3b", "qwen2.5-7b"]
TOOLS = ["calculator", "kb_search", "web_search", "http_api"]


def _events(users: list[uuid.UUID], count: int, now: datetime) -> list[dict[str, Any]]:
    rng = random.Random(7)
    rows = []
    for _ in range(count):
        tools = (
            [{"name": rng.choice(TOOLS), "status": rng.choice(["ok", "ok", "error"])}]
            if rng.random() < 0.33
            else []
        )
        streamed = rng.random() < 0.5
        rows.append(
            {
                "id": uuid.uuid4(),
                "user_id": rng.choice(users),
                "kind": "agent_turn",
                "conversation_id": uuid.uuid4(),
                "run_id": str(uuid.uuid4()),
                "model": rng.choice(MODELS),
                "input_tokens": rng.randint(50, 4000),
                "output_tokens": rng.randint(10, 800),
                "cost_usd": rng.random() / 100,
                "latency_ms": rng.randint(200, 20000),
                "ttft_ms": rng.randint(50, 2000) if streamed else None,
                "streamed": streamed,
                "tools": tools,
                "status": "failed" if rng.random() < 0.03 else "completed",
                "error_code": None,
                "details": {},
                "created_at": now - timedelta(seconds=rng.randint(0, 90 * 86400)),
            }
        )
    return rows


async def _fill(resources: Resources, events: int) -> uuid.UUID:
    now = resources.clock.now()
    users = [uuid.uuid4() for _ in range(200)]
    async with resources.sessionmaker() as session:
        await session.execute(
            insert(User),
            [
                {
                    "id": user_id,
                    "email": f"bench-{user_id.hex[:12]}@example.com",
                    "password_hash": "x",
                    "role": Role.user.value,
                    "is_active": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for user_id in users
            ],
        )
        rows = _events(users, events, now)
        for start in range(0, len(rows), 5000):
            await session.execute(insert(UsageEvent), rows[start : start + 5000])
        await session.commit()
    return users[0]


async def _p50(client: httpx.AsyncClient, url: str, headers: dict[str, str], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await client.get(url, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(timings)


async def _signed_in_admin(client: httpx.AsyncClient, resources: Resources) -> dict[str, str]:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": "bench-password-1"}
    registered = (await client.post("/api/v1/auth/register", json=body)).json()
    async with resources.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(registered["user"]["id"]))
        assert user is not None
        user.role = Role.admin.value
        await session.commit()
    token = (await client.post("/api/v1/auth/login", json=body)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def _clear_redis(prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    async for key in redis.scan_iter(match=f"{prefix}*"):
        await redis.delete(key)
    await redis.aclose()


async def run(backend: str, events: int, runs: int) -> None:
    """Fill, then time each aggregate uncached and cached on one backend."""
    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict[str, Any] = {}
        async with AsyncExitStack() as stack:
            if backend == "postgres":
                prefix = f"mai-bench:{uuid.uuid4().hex[:8]}:"
                overrides = {
                    "database_url": await stack.enter_async_context(scratch_database()),
                    "redis_url": REDIS_URL,
                    "redis_prefix": prefix,
                }
                stack.push_async_callback(_clear_redis, prefix)
            results: dict[str, float] = {}
            for cache_seconds in (0, 300):
                settings = Settings(
                    _env_file=None,
                    data_dir=Path(tmp) / "data",
                    log_level="WARNING",
                    bcrypt_rounds=4,
                    rate_limit_per_minute=0,
                    auth_rate_limit_per_minute=0,
                    analytics_cache_seconds=cache_seconds,
                    **overrides,
                )
                app = create_app(settings)
                async with LifespanManager(app, startup_timeout=120):
                    resources: Resources = app.state.resources
                    if cache_seconds == 0:
                        started = time.perf_counter()
                        bench_user = await _fill(resources, events)
                        fill_s = time.perf_counter() - started
                        print(f"[{backend}] filled {events} events in {fill_s:.1f}s")
                    transport = httpx.ASGITransport(app=app)
                    async with httpx.AsyncClient(
                        transport=transport, base_url="http://bench", timeout=120
                    ) as client:
                        headers = await _signed_in_admin(client, resources)
                        label = "cached" if cache_seconds else "uncached"
                        if cache_seconds:  # the floor: an authenticated request doing nothing
                            results["floor"] = await _p50(client, "/api/v1/users/me", headers, runs)
                        results[f"system {label}"] = await _p50(
                            client, "/api/v1/analytics/system", headers, runs
                        )
                        results[f"user {label}"] = await _p50(
                            client, f"/api/v1/analytics/users/{bench_user}", headers, runs
                        )
                        if cache_seconds:
                            before = (
                                await client.get("/api/v1/analytics/system", headers=headers)
                            ).json()["totals"]["turns"]
                            await AnalyticsService(resources).record_turn(
                                user_id=bench_user,
                                conversation_id=None,
                                run_id=None,
                                model="gpt-4o",
                                input_tokens=10,
                                output_tokens=10,
                                latency_ms=100,
                                status="completed",
                            )
                            after = (
                                await client.get("/api/v1/analytics/system", headers=headers)
                            ).json()["totals"]["turns"]
                            print(f"[{backend}] invalidation: turns {before} -> {after}")
                            assert after == before + 1
            print(f"[{backend}] GET /users/me p50 {results['floor']:.1f} ms (auth + JSON floor)")
            for scope in ("system", "user"):
                uncached, cached = results[f"{scope} uncached"], results[f"{scope} cached"]
                print(
                    f"[{backend}] {scope:6} p50 uncached {uncached:8.1f} ms   cached "
                    f"{cached:6.1f} ms   cached/uncached {cached / uncached:.3f}"
                )


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        asyncio.run(run(backend, args.events, args.runs))


if __name__ == "__main__":
    main()
