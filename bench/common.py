"""Shared helpers of the benchmarks: percentiles, scratch PostgreSQL databases, MAI processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get(
    "MAI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("MAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    """`p50 … / p95 …` in milliseconds."""
    return f"p50 {statistics.median(values):8.1f} ms  p95 {percentile(values, 0.95):8.1f} ms"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (never 2024, which this machine reserves)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port if port != 2024 else free_port()


async def create_database() -> str:
    """A fresh PostgreSQL database; returns its SQLAlchemy asyncpg URL."""
    name = f"mai_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql+asyncpg://{base}/{name}"


async def drop_database(url: str) -> None:
    """Drop a database made by `create_database`."""
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@asynccontextmanager
async def scratch_database(migrate: bool = True) -> AsyncIterator[str]:
    """A fresh PostgreSQL database (migrated to head unless `migrate` is false), dropped on exit."""
    from app.core.config import Settings
    from app.core.db import create_engine, upgrade_schema

    url = await create_database()
    try:
        if migrate:
            engine = create_engine(Settings(_env_file=None, database_url=url))
            await upgrade_schema(engine)
            await engine.dispose()
        yield url
    finally:
        await drop_database(url)


async def redis_available() -> bool:
    """Whether the Redis at REDIS_URL answers a ping."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
        return True
    except (OSError, RedisError):
        return False
    finally:
        await client.aclose()


def mai_env(**values: str) -> dict[str, str]:
    """This process's environment without MAI_* variables, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    env.update(values)
    return env


def start_mai(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a `mai` command in its own process group, output to `log`."""
    script = shutil.which("mai", path=str(Path(sys.executable).parent))
    assert script is not None, "run with `uv run`: the mai script is not installed"
    with log.open("wb") as out:
        return subprocess.Popen(
            [script, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a process started by `start_mai` (SIGKILL after 20 s)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Poll GET /ready until 200 (the process must stay alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError("the server did not become ready")


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list of started processes, all stopped on exit."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            stop(process)
