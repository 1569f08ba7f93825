"""One short turn against a real OpenAI-compatible server (`pytest -m live`).

Start one with `../shared/tools/local-llm/serve` (127.0.0.1:1234) or point MAI_LLM_BASE_URL at
LM Studio, Ollama, vLLM or OpenAI. Deselected by default: it needs a model and takes seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from tests.api.agent_helpers import parse_sse
from tests.conftest import AppFactory, client_for, register

pytestmark = pytest.mark.live

BASE_URL = os.environ.get("MAI_LLM_BASE_URL", "http://127.0.0.1:1234/v1").rstrip("/")


async def _server_up() -> bool:
    try:
        async with httpx.AsyncClient(timeout=3) as http:
            return (await http.get(f"{BASE_URL}/models")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_one_turn_against_the_real_llm(app_factory: AppFactory, tmp_path: Path) -> None:
    if not await _server_up():
        pytest.fail(f"no OpenAI-compatible server answers at {BASE_URL}/models", pytrace=False)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="test",
        data_dir=tmp_path / "data",
        llm_base_url=BASE_URL,
        llm_model=os.environ.get("MAI_LLM_MODEL") or None,
        llm_timeout_seconds=300,
        max_tool_iterations=2,
        bcrypt_rounds=4,
        log_level="WARNING",
    )
    app = await app_factory(settings)
    async with client_for(app) as client:
        client.timeout = httpx.Timeout(600)
        account = await register(client)
        response = await client.post(
            "/api/v1/agent/query",
            json={"message": "Say hello in five words or fewer."},
            headers=account.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "completed"
        assert body["answer"].strip()
        assert body["usage"]["output_tokens"] > 0
        assert body["model"]

        stream = await client.post(
            "/api/v1/agent/stream",
            json={"message": "Now say goodbye.", "conversation_id": body["conversation_id"]},
            headers=account.headers,
        )
        events, _ = parse_sse(stream.text)
        names = [e.event for e in events]
        assert names[0] == "metadata"
        assert names[-2:] == ["values", "end"], names
        assert events[-2].data["answer"].strip()
