"""What human approval adds to a turn: pause + resume vs the same turn uninterrupted.

One tool turn with a zero-latency scripted model (tests/fake_llm.py): route, a `send_email` call,
the answer (three model calls either way). Measured through the HTTP API in the same run:
  uninterrupted: POST /api/v1/agent/query on an app where send_email is exempt from approval
                 (MAI_APPROVAL_EXEMPT_TOOLS=send_email): the email runs at once;
  approval:      POST /api/v1/agent/query (pauses: interrupt, approvals stored, run parked)
                 + POST /api/v1/approvals/{id}/approve (decision, resume from the checkpoint).
Both apps run side by side on the same backend and are measured interleaved, so drift hits both
alike. Prints p50/p95 of each and their ratio.

    uv run python bench/approval_overhead.py [--turns 100] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import Settings
from app.main import create_app
from bench.common import REDIS_URL, percentile, scratch_database
from tests.fake_llm import ask_tools, responding, tool_call

ANSWER = "I sent the email."
EMAIL = {"to": "ada@example.com", "subject": "Bench", "body": "Hello from the benchmark."}


def respond(messages: list[BaseMessage]) -> AIMessage | str:
    """Zero-latency model: route to tools, ask for send_email, then answer."""
    first = str(messages[0].content) if messages else ""
    if first.startswith("Decide how the assistant should handle"):
        return '{"route": "tools"}'
    if isinstance(messages[-1], ToolMessage):
        return ANSWER
    return ask_tools(tool_call("send_email", EMAIL), content="You asked me to send it.")


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A started app with a registered user: its client and auth headers."""
    app = create_app(settings, chat_model=responding(respond))
    async with (
        LifespanManager(app, startup_timeout=120, shutdown_timeout=60),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60
        ) as client,
    ):
        reply = await client.post(
            "/api/v1/auth/register",
            json={"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": "bench-pw-1"},
        )
        reply.raise_for_status()
        yield client, {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def run_backend(name: str, settings: dict[str, Any], turns: int) -> dict[str, Any]:
    """Measure uninterrupted vs pause + resume on one backend (two apps, own data dirs)."""
    base = dict(settings)
    data_dir = Path(base.pop("data_dir"))
    exempt = Settings(
        _env_file=None,
        approval_exempt_tools="send_email",
        data_dir=data_dir / "uninterrupted",
        **base,
    )
    gated = Settings(_env_file=None, data_dir=data_dir / "approval", **base)
    async with started(exempt) as (plain, plain_headers), started(gated) as (app, headers):

        async def uninterrupted() -> float:
            begin = time.perf_counter()
            response = await plain.post(
                "/api/v1/agent/query", json={"message": "Mail Ada"}, headers=plain_headers
            )
            elapsed = time.perf_counter() - begin
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "completed", response.text
            return elapsed * 1000

        async def paused_and_resumed() -> float:
            begin = time.perf_counter()
            response = await app.post(
                "/api/v1/agent/query", json={"message": "Mail Ada"}, headers=headers
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "awaiting_approval", body
            decision = await app.post(
                f"/api/v1/approvals/{body['approvals'][0]['id']}/approve", headers=headers
            )
            elapsed = time.perf_counter() - begin
            assert decision.status_code == 200, decision.text
            assert decision.json()["answer"] == ANSWER
            return elapsed * 1000

        for _ in range(5):  # warm-up
            await uninterrupted()
            await paused_and_resumed()
        plain_ms: list[float] = []
        approval_ms: list[float] = []
        for _ in range(turns):
            plain_ms.append(await uninterrupted())
            approval_ms.append(await paused_and_resumed())
    return {
        "backend": name,
        "plain_p50": statistics.median(plain_ms),
        "plain_p95": percentile(plain_ms, 0.95),
        "approval_p50": statistics.median(approval_ms),
        "approval_p95": percentile(approval_ms, 0.95),
    }


async def main() -> int:
    """Run on the chosen backends and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    common: dict[str, Any] = {
        "env": "test",
        "log_level": "WARNING",
        "bcrypt_rounds": 4,
        "rate_limit_per_minute": 1_000_000,
        "auth_rate_limit_per_minute": 1_000_000,
        "llm_base_url": "http://127.0.0.1:9/v1",
        "metrics_enabled": False,
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mai-bench-") as tmp:
        if args.backend in ("sqlite", "both"):
            rows.append(
                await run_backend(
                    "sqlite", {**common, "data_dir": Path(tmp) / "sqlite"}, args.turns
                )
            )
        if args.backend in ("postgres", "both"):
            async with scratch_database() as url:
                rows.append(
                    await run_backend(
                        "postgres",
                        {
                            **common,
                            "data_dir": Path(tmp) / "postgres",
                            "database_url": url,
                            "redis_url": REDIS_URL,
                            "redis_prefix": f"mai-bench:{uuid.uuid4().hex[:8]}:",
                            "auto_migrate": False,
                        },
                        args.turns,
                    )
                )
    print(f"approval overhead: {args.turns} turns per mode, zero-latency scripted model")
    print(
        f"{'backend':<10}{'uninterrupted p50/p95 ms':>28}{'pause+resume p50/p95 ms':>28}"
        f"{'ratio p50':>11}{'ratio p95':>11}"
    )
    for row in rows:
        print(
            f"{row['backend']:<10}"
            f"{row['plain_p50']:>17.1f} / {row['plain_p95']:>7.1f}"
            f"{row['approval_p50']:>17.1f} / {row['approval_p95']:>7.1f}"
            f"{row['approval_p50'] / row['plain_p50']:>10.2f}x"
            f"{row['approval_p95'] / row['plain_p95']:>10.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
