"""With no embedding model on disk, the knowledge base says so at once instead of downloading."""

from __future__ import annotations

import time

import pytest

from app.core.config import Settings
from tests.conftest import AppFactory, SettingsFactory, client_for, register
from tests.kb.support import upload

pytestmark = pytest.mark.usefixtures("backend")


async def test_missing_model_is_503_at_once_and_nothing_is_downloaded(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    # The default fastembed provider with no MAI_EMBEDDING_MODEL_PATH and an empty cache.
    settings: Settings = settings_factory(rate_limit_per_minute=0, embedding_model_path=None)
    started = time.perf_counter()
    app = await app_factory(settings)
    async with client_for(app) as client:
        account = await register(client)
        for response in (
            await client.post(
                "/api/v1/kb/search", headers=account.headers, json={"query": "ERR-4471"}
            ),
            await upload(client, account.headers, "a.txt", b"Some text about pumps."),
        ):
            assert response.status_code == 503
            body = response.json()
            assert body["error"] == "embeddings_unavailable"
            assert "MAI_EMBEDDING_MODEL_PATH" in body["detail"]
        listing = await client.get("/api/v1/kb/documents", headers=account.headers)
        assert listing.json()["total"] == 0, "a document that cannot be embedded is not queued"
        with pytest.raises(Exception, match="MAI_EMBEDDING_MODEL_PATH"):
            await app.state.resources.retriever.search("pumps", user_id=account.id, top_k=3)
    # A download attempt retries for a minute when offline; answering takes well under that.
    assert time.perf_counter() - started < 20
    cache = settings.data_dir / "fastembed"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))
