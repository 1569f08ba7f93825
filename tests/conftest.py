"""Shared fixtures: the suite runs against the embedded default and PostgreSQL + Redis.

`backend` is parametrized over both. PostgreSQL and Redis are required in CI (CI=true): there a
missing service fails the test; elsewhere it is skipped with a reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text

from app.core.clock import FrozenClock
from app.core.config import Settings
from app.core.db import create_engine, upgrade_schema
from app.main import create_app
from app.models import Base

PG_ADMIN_URL = os.environ.get(
    "MAI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("MAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Nothing listens on port 9 (discard): an LLM that is down, without a slow timeout.
DOWN_LLM_URL = "http://127.0.0.1:9/v1"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str) -> None:
    """Fail in CI, skip elsewhere: a service test must never silently skip where it should run."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available", pytrace=False)
    pytest.skip(f"{what} is not available on this machine")


async def _postgres_ok() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def _redis_ok() -> bool:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception:
        return False
    finally:
        await client.aclose()
    return True


@dataclass
class PostgresDatabase:
    """A throwaway PostgreSQL database for one test session."""

    name: str
    url: str  # SQLAlchemy asyncpg URL
    conninfo: str  # libpq URL


@pytest.fixture(scope="session")
async def postgres_database() -> AsyncIterator[PostgresDatabase | None]:
    """Create a fresh database, migrate it once, drop it at the end; None when PG is missing."""
    if not await _postgres_ok():
        yield None
        return
    name = f"mai_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    conninfo = f"{base}/{name}"
    url = "postgresql+asyncpg://" + conninfo.split("://", 1)[1]
    engine = create_engine(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    await upgrade_schema(engine)
    await engine.dispose()
    yield PostgresDatabase(name, url, conninfo)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
async def redis_available() -> bool:
    """Whether Redis answers at MAI_TEST_REDIS_URL."""
    return await _redis_ok()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which persistence the test runs on: the embedded default or PostgreSQL + Redis."""
    return str(request.param)


@pytest.fixture
def clock() -> FrozenClock:
    """A controlled clock starting now, so tokens and windows can be moved through time."""
    from datetime import UTC, datetime

    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


SettingsFactory = Callable[..., Settings]


@pytest.fixture
async def settings_factory(
    backend: str,
    tmp_path: Path,
    postgres_database: PostgresDatabase | None,
    redis_available: bool,
) -> AsyncIterator[SettingsFactory]:
    """Build settings for this backend; keyword arguments override any field."""
    prefix = f"mai-test:{uuid.uuid4().hex[:12]}:"
    if backend == "postgres":
        if postgres_database is None:
            unavailable("PostgreSQL")
        if not redis_available:
            unavailable("Redis")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "data_dir": tmp_path / "data",
            "llm_base_url": DOWN_LLM_URL,
            "bcrypt_rounds": 4,
            "log_level": "WARNING",
            "health_timeout_seconds": 5.0,
            # Fixtures register many users from one address; rate-limit tests lower these.
            "auth_rate_limit_per_minute": 10_000,
            "rate_limit_per_minute": 10_000,
            # The memory step makes a model call after each answer, which scripted models would
            # have to script; tests of memory turn it on.
            "memory_enabled": False,
        }
        if backend == "postgres":
            assert postgres_database is not None
            values |= {
                "database_url": postgres_database.url,
                "redis_url": REDIS_URL,
                "redis_prefix": prefix,
                "auto_migrate": False,
            }
        values |= overrides
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    yield make
    if backend == "postgres" and postgres_database is not None:
        await _truncate_postgres(postgres_database.url)
        redis = Redis.from_url(REDIS_URL)
        async for key in redis.scan_iter(match=prefix + "*"):
            await redis.delete(key)
        await redis.aclose()


async def _truncate_postgres(url: str) -> None:
    engine = create_engine(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    tables = [t.name for t in Base.metadata.sorted_tables]
    async with engine.begin() as conn:
        extra = await conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                # LangGraph's checkpointer and memory store data (not their migration tables).
                "AND (tablename LIKE 'checkpoint%' OR tablename IN ('store', 'store_vectors'))"
            )
        )
        tables += [row[0] for row in extra]
        if tables:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
    await engine.dispose()


@pytest.fixture
def settings(settings_factory: SettingsFactory) -> Settings:
    """Default settings for the test's backend."""
    return settings_factory()


class AppFactory:
    """Starts app instances (lifespan included) and stops them; all are stopped after the test."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.managers: dict[int, LifespanManager] = {}

    async def __call__(self, settings: Settings, **kwargs: Any) -> FastAPI:
        """Build and start an app instance."""
        kwargs.setdefault("clock", self.clock)
        app = create_app(settings, **kwargs)
        manager = LifespanManager(app, startup_timeout=60, shutdown_timeout=60)
        await manager.__aenter__()
        self.managers[id(app)] = manager
        return app

    async def stop(self, app: FastAPI) -> None:
        """Run an instance's shutdown, as a process exit would."""
        manager = self.managers.pop(id(app))
        await manager.__aexit__(None, None, None)

    async def stop_all(self) -> None:
        """Stop every instance still running, newest first."""
        for key in reversed(list(self.managers)):
            await self.managers.pop(key).__aexit__(None, None, None)


@pytest.fixture
async def app_factory(clock: FrozenClock) -> AsyncIterator[AppFactory]:
    """Start app instances on demand; every one is stopped after the test."""
    factory = AppFactory(clock)
    yield factory
    await factory.stop_all()


@pytest.fixture
async def app(app_factory: AppFactory, settings: Settings) -> FastAPI:
    """A started app instance on the test's backend."""
    return await app_factory(settings)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    """An HTTP client talking to an app in-process."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the test's app."""
    async with client_for(app) as http:
        yield http


@dataclass
class Account:
    """A registered user with a live token pair."""

    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization headers for this account."""
        return {"Authorization": f"Bearer {self.access_token}"}


AccountFactory = Callable[..., Awaitable[Account]]


async def register(
    http: httpx.AsyncClient, email: str | None = None, password: str = "correct-horse-1"
) -> Account:
    """Register a user through the API."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    response = await http.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "full_name": "Test"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(body["user"]["id"], email, password, body["access_token"], body["refresh_token"])


@pytest.fixture
def account_factory(client: httpx.AsyncClient) -> AccountFactory:
    """Register users on the test's app."""

    async def make(email: str | None = None, password: str = "correct-horse-1") -> Account:
        return await register(client, email, password)

    return make


@pytest.fixture
async def user(account_factory: AccountFactory) -> Account:
    """A registered ordinary user."""
    return await account_factory()


@pytest.fixture
async def admin_settings(settings_factory: SettingsFactory) -> Settings:
    """Settings that create an admin at start."""
    return settings_factory(admin_email="root@example.com", admin_password="admin-password-1")


@pytest.fixture
async def admin(client: httpx.AsyncClient, app: FastAPI) -> Account:
    """An admin: a registered user promoted through the service's own first-admin path."""
    from app.core.resources import Resources
    from app.models import Role, User

    account = await register(client)
    resources: Resources = app.state.resources
    async with resources.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(account.id))
        assert user is not None
        user.role = Role.admin.value
        await session.commit()
    return account


QUERY_PATH = "/api/v1/agent/query"


@dataclass
class Agent:
    """A started app with a scripted model, a client and a signed-up user."""

    app: FastAPI
    client: httpx.AsyncClient
    user: Account
    model: Any  # tests.fake_llm.ScriptedChatModel

    @property
    def resources(self) -> Any:
        """The app's resources (app.core.resources.Resources)."""
        return self.app.state.resources

    async def ask(self, message: str, **body: Any) -> httpx.Response:
        """POST /agent/query as the user."""
        return await self.client.post(
            QUERY_PATH, json={"message": message, **body}, headers=self.user.headers
        )


StartAgent = Callable[..., Awaitable[Any]]


@pytest.fixture
async def start_agent(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> AsyncIterator[StartAgent]:
    """Start an app whose LLM is the given scripted model (settings overrides as keywords).

    The knowledge base embeds with the deterministic test embedding, so nothing downloads.
    """
    from tests.kb.support import HashEmbedder

    clients: list[httpx.AsyncClient] = []

    async def start(
        model: Any, user: Account | None = None, agent_class: type[Agent] = Agent, **overrides: Any
    ) -> Agent:
        app = await app_factory(
            settings_factory(**overrides), chat_model=model, embedder=HashEmbedder()
        )
        client = client_for(app)
        clients.append(client)
        return agent_class(app, client, user or await register(client), model)

    yield start
    for client in clients:
        await client.aclose()
