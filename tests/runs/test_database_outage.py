"""PostgreSQL going away under a running service: every answer is a 503 in the one error shape
(never a 500, never a dropped connection), and the service recovers by itself."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.core.db import create_engine, upgrade_schema
from tests.conftest import AppFactory, SettingsFactory, client_for, register
from tests.fake_llm import scripted
from tests.kb.support import HashEmbedder
from tests.private_postgres import PrivatePostgres

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own, started."""
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_database_down_is_503_and_recovers_without_a_restart(
    app_factory: AppFactory, settings_factory: SettingsFactory, private_postgres: PrivatePostgres
) -> None:
    settings = settings_factory(database_url=private_postgres.url)
    engine = create_engine(settings)
    await upgrade_schema(engine)
    await engine.dispose()
    model = scripted({"route": "direct"}, "Back again.")
    app = await app_factory(settings, chat_model=model, embedder=HashEmbedder())
    async with client_for(app) as client:
        account = await register(client)
        private_postgres.stop()
        answers: list[httpx.Response] = [
            await client.post(
                "/api/v1/auth/login",
                json={"email": account.email, "password": account.password},
            ),
            await client.get("/api/v1/users/me", headers=account.headers),
            await client.post(
                "/api/v1/agent/query", json={"message": "hi"}, headers=account.headers
            ),
            await client.post(
                "/api/v1/agent/stream", json={"message": "hi"}, headers=account.headers
            ),
            await client.get("/api/v1/agent/conversations", headers=account.headers),
        ]
        for answer in answers:
            assert answer.status_code == 503, (answer.request.url, answer.text)
            assert answer.json()["error"] == "database_unavailable"
            assert int(answer.headers["Retry-After"]) > 0

        private_postgres.start()
        again = await client.post(
            "/api/v1/agent/query", json={"message": "hi"}, headers=account.headers
        )
        assert again.status_code == 200, again.text
        assert again.json()["answer"] == "Back again."
