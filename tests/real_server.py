"""A real `mai serve` subprocess for end-to-end tests of real clients.

`serve_mai` starts the installed `mai` script on a free port with the given environment on top
of a clean one (no inherited MAI_ variables), a local scripted OpenAI-compatible model and the
shared offline embedding model, waits for /ready and stops the whole process group at the end.
`database_env` parametrizes a module over the embedded default and PostgreSQL + Redis.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import REDIS_URL, unavailable
from tests.observability.openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT.parent / "shared" / "models" / "minilm-onnx-int8"
# The log file of each running `mai serve`, by base URL (a failing test shows its end).
SERVER_LOGS: dict[str, Path] = {}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])],
)
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Nothing for the embedded default; a fresh PostgreSQL database and Redis otherwise."""
    if request.param == "sqlite":
        yield {}
        return
    name = f"mai_live_{uuid.uuid4().hex[:10]}"

    async def run(statement: str) -> None:
        try:
            admin = await asyncpg.connect(PG_ADMIN)
        except OSError:
            unavailable("PostgreSQL at 127.0.0.1:5432")
            return
        await admin.execute(statement)
        await admin.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield {
        "MAI_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
        "MAI_REDIS_URL": REDIS_URL,
        "MAI_REDIS_PREFIX": f"live-{uuid.uuid4().hex[:8]}:",
    }
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    """A free local TCP port (never 2024, which is taken on the shared machine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port if port != 2024 else free_port()


def mai_script() -> str:
    """The `mai` console script of this environment."""
    script = shutil.which("mai", path=str(Path(sys.executable).parent))
    assert script is not None, "the mai script is not installed in this environment"
    return script


@contextmanager
def serve_mai(llm: OpenAIServer, data_dir: Path, env: dict[str, str]) -> Iterator[str]:
    """Run `mai serve` against `llm` with its data in `data_dir`; yields its base URL.

    A server database (MAI_DATABASE_URL in `env`) is migrated first, as an operator would.
    """
    full = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    full.update(
        {
            "MAI_DATA_DIR": str(data_dir),
            "MAI_LLM_BASE_URL": llm.base_url,
            "MAI_LLM_MODEL": "test-model",
            "MAI_LLM_MAX_RETRIES": "0",
            "MAI_EMBEDDING_MODEL_PATH": str(MODEL_DIR),
            "MAI_BCRYPT_ROUNDS": "4",
            "MAI_LOG_LEVEL": "WARNING",
            **env,
        }
    )
    script = mai_script()
    if "MAI_DATABASE_URL" in full:
        migrated = subprocess.run(
            [script, "migrate"], env=full, capture_output=True, text=True, timeout=120
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir.parent / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [script, "serve", "--port", str(port)],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    SERVER_LOGS[base] = log
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mai serve did not get ready: " + log.read_text()
            time.sleep(0.3)
        yield base
    finally:
        SERVER_LOGS.pop(base, None)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def sign_up_with_key(base: str, email: str, key_name: str = "test") -> tuple[str, str]:
    """Register `email` on a running server; its access token and a new MAI API key."""
    signup = httpx.post(
        f"{base}/api/v1/auth/register",
        json={"email": email, "password": "correct-horse-1"},
        timeout=30,
    )
    assert signup.status_code == 201, signup.text
    token = str(signup.json()["access_token"])
    created = httpx.post(
        f"{base}/api/v1/api-keys",
        json={"name": key_name},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    key = str(created.json()["key"])
    assert key.startswith("mai_")
    return token, key
