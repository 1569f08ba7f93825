"""Helpers for the feedback and analytics tests: an app with a scripted model, users, turns."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from app.core.resources import Resources
from app.models import Role, User
from tests.conftest import Account, AppFactory, SettingsFactory, client_for, register
from tests.fake_llm import ScriptedChatModel, count_tokens

QUERY = "/api/v1/agent/query"
STREAM = "/api/v1/agent/stream"
USAGE = "/api/v1/analytics/usage"
SYSTEM = "/api/v1/analytics/system"
FEEDBACK = "/api/v1/feedback"


def direct(answer: str) -> list[Any]:
    """The scripted replies of a turn the router answers directly."""
    return [{"route": "direct"}, answer]


@dataclass
class UsageApp:
    """A started app with a scripted model, its client, a user and an admin."""

    app: FastAPI
    client: httpx.AsyncClient
    user: Account
    admin: Account
    model: ScriptedChatModel
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def resources(self) -> Resources:
        """The app's resources."""
        resources: Resources = self.app.state.resources
        return resources

    async def new_user(self) -> Account:
        """Register one more user."""
        return await register(self.client)

    async def login(self, account: Account) -> Account:
        """Sign in again (after the clock moved past the access token's life)."""
        response = await self.client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": account.password}
        )
        assert response.status_code == 200, response.text
        account.access_token = response.json()["access_token"]
        account.refresh_token = response.json()["refresh_token"]
        return account

    async def turn(
        self, account: Account | None = None, message: str = "hello", **extra: Any
    ) -> dict[str, Any]:
        """Run one turn through POST /agent/query; returns the answer body."""
        account = account or self.user
        response = await self.client.post(
            QUERY, json={"message": message, **extra}, headers=account.headers
        )
        assert response.status_code == 200, response.text
        await self.settle()
        body: dict[str, Any] = response.json()
        return body

    async def settle(self) -> None:
        """Wait for the turns still running in the app: their hooks (usage events) run after
        the caller has its answer."""
        running = [run.task for run in self.resources.runs.local.values()]
        if running:
            await asyncio.wait(running, timeout=30)

    async def usage(self, account: Account | None = None, **params: str) -> dict[str, Any]:
        """GET /analytics/usage for an account."""
        account = account or self.user
        response = await self.client.get(USAGE, params=params, headers=account.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def system(self, **params: str) -> dict[str, Any]:
        """GET /analytics/system as the admin."""
        response = await self.client.get(SYSTEM, params=params, headers=self.admin.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def promote(app: FastAPI, account: Account) -> None:
    """Make an account an admin (the service's own first-admin path does the same)."""
    resources: Resources = app.state.resources
    async with resources.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(account.id))
        assert user is not None
        user.role = Role.admin.value
        await session.commit()


async def start_usage_app(
    app_factory: AppFactory,
    settings_factory: SettingsFactory,
    model: ScriptedChatModel,
    **overrides: Any,
) -> UsageApp:
    """Start an app on the test's backend whose LLM is the scripted model."""
    app = await app_factory(settings_factory(**overrides), chat_model=model)
    client = client_for(app)
    user = await register(client)
    admin = await register(client)
    await promote(app, admin)
    return UsageApp(app, client, user, admin, model, [client])


def input_tokens_of(model: ScriptedChatModel, first: int = 0, stop: int | None = None) -> int:
    """Input tokens the fake reported for its calls [first:stop] (count_tokens of the prompts)."""
    return sum(
        count_tokens(" ".join(str(m.content) for m in messages))
        for messages in model.calls[first:stop]
    )


def reply_tokens(*replies: Any) -> int:
    """Output tokens the fake reports for these scripted replies."""
    total = 0
    for reply in replies:
        if isinstance(reply, dict):
            total += count_tokens(json.dumps(reply))
        elif isinstance(reply, str):
            total += count_tokens(reply)
        else:
            total += count_tokens(str(reply.content)) + sum(
                count_tokens(json.dumps(c["args"])) for c in reply.tool_calls
            )
    return total
