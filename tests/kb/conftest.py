"""Knowledge-base tests run the real app with a deterministic embedding (no model download)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from app.core.config import Settings
from tests.conftest import AppFactory, SettingsFactory
from tests.kb.support import HashEmbedder


@pytest.fixture
def embedder() -> HashEmbedder:
    """The test embedding."""
    return HashEmbedder()


@pytest.fixture
def settings(settings_factory: SettingsFactory) -> Settings:
    """Settings with the rate limit off: the tests poll document status."""
    return settings_factory(rate_limit_per_minute=0)


@pytest.fixture
async def app(app_factory: AppFactory, settings: Settings, embedder: HashEmbedder) -> FastAPI:
    """An app instance whose knowledge base uses the test embedding."""
    return await app_factory(settings, embedder=embedder)
