"""Fixtures shared by the usage, analytics and budget tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.api.usage_helpers import UsageApp, start_usage_app
from tests.conftest import AppFactory, SettingsFactory
from tests.fake_llm import ScriptedChatModel

Start = Callable[..., Awaitable[UsageApp]]


@pytest.fixture
async def start(app_factory: AppFactory, settings_factory: SettingsFactory) -> AsyncIterator[Start]:
    """Start apps with a scripted model; their clients are closed after the test."""
    started: list[UsageApp] = []

    async def make(model: ScriptedChatModel, **overrides: Any) -> UsageApp:
        usage_app = await start_usage_app(app_factory, settings_factory, model, **overrides)
        started.append(usage_app)
        return usage_app

    yield make
    for usage_app in started:
        for client in usage_app.clients:
            await client.aclose()
