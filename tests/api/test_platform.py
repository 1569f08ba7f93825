"""Health, readiness, the error shape, request ids, first admin, restarts, migrations."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import inspect, text

from app.core.config import Settings
from app.core.db import (
    SCHEMA_HEAD,
    alembic_config,
    create_engine,
    downgrade_schema,
    pending_migrations,
    upgrade_schema,
)
from tests.conftest import Account, AppFactory, SettingsFactory, client_for, register

pytestmark = pytest.mark.usefixtures("backend")


class _ModelsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": "local-model", "object": "model"}]})
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def fake_llm_server() -> Iterator[str]:
    """A local HTTP server answering GET /v1/models like an OpenAI-compatible server."""
    server = HTTPServer(("127.0.0.1", 0), _ModelsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _components(body: dict[str, object]) -> dict[str, dict[str, object]]:
    items = body["components"]
    assert isinstance(items, list)
    return {c["name"]: c for c in items}


async def test_health_degraded_when_llm_down(
    client: httpx.AsyncClient, backend: str, admin: Account
) -> None:
    response = await client.get("/health", headers=admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    components = _components(body)
    assert set(components) == {"database", "redis", "qdrant", "llm"}
    assert components["database"]["status"] == "healthy"
    assert components["database"]["backend"] == (
        "postgresql" if backend == "postgres" else "sqlite"
    )
    assert components["redis"]["backend"] == ("redis" if backend == "postgres" else "in-process")
    assert components["llm"]["status"] == "unhealthy"
    assert components["llm"]["models"] == []
    assert isinstance(components["llm"]["latency_ms"], float)


async def test_health_lists_llm_models(
    app_factory: AppFactory, settings_factory: SettingsFactory, fake_llm_server: str
) -> None:
    app = await app_factory(settings_factory(llm_base_url=fake_llm_server, health_details="public"))
    async with client_for(app) as http:
        body = (await http.get("/health")).json()
    assert body["status"] == "healthy"
    assert _components(body)["llm"]["models"] == ["local-model"]


async def test_health_unhealthy_when_database_down(app: FastAPI, client: httpx.AsyncClient) -> None:
    await app.state.resources.engine.dispose()
    # Point the engine at nowhere: the database component must be reported down with 503.
    from sqlalchemy.ext.asyncio import create_async_engine

    app.state.resources.engine = create_async_engine(
        "postgresql+asyncpg://nobody@127.0.0.1:9/none", connect_args={"timeout": 1}
    )
    response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert _components(response.json())["database"]["status"] == "unhealthy"
    await app.state.resources.engine.dispose()


async def test_ready(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_request_id_honoured_and_generated(client: httpx.AsyncClient) -> None:
    mine = await client.get("/ready", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["X-Request-ID"] == "abc-123"
    generated = await client.get("/ready", headers={"X-Request-ID": "bad id with spaces\n"})
    assert generated.headers["X-Request-ID"] != "bad id with spaces\n"
    assert len(generated.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("method", "path", "content", "status", "code"),
    [
        ("POST", "/api/v1/auth/login", b"{not json", 400, "invalid_json"),
        ("POST", "/api/v1/auth/login", b"[]", 422, "validation_error"),
        ("POST", "/api/v1/auth/login", '{"email": "\xe9"}'.encode("latin-1"), 400, "invalid_json"),
        (
            "POST",
            "/api/v1/auth/login",
            b'{"email": "a@b.co", "password": "\\u0000"}',
            400,
            "nul_character",
        ),
        ("GET", "/api/v1/nowhere", None, 404, "not_found"),
        ("DELETE", "/api/v1/auth/login", None, 405, "method_not_allowed"),
    ],
)
async def test_one_error_shape(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    content: bytes | None,
    status: int,
    code: str,
) -> None:
    response = await client.request(
        method,
        path,
        content=content,
        headers={"Content-Type": "application/json", "X-Request-ID": "req-1"},
    )
    assert response.status_code == status
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == "req-1"


async def test_missing_body_names_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/login")
    assert response.status_code == 422
    assert response.json()["detail"] == "request body: Field required"


async def test_nul_characters_are_refused_before_the_database(client: httpx.AsyncClient) -> None:
    # PostgreSQL cannot store U+0000: these were 500s there (and stored as-is on SQLite).
    account = await register(client)
    headers = account.headers
    sent = [
        await client.patch("/api/v1/users/me", json={"full_name": "a\x00b"}, headers=headers),
        await client.post("/api/v1/agent/query", json={"message": "hi\x00"}, headers=headers),
        await client.post(
            "/api/v1/kb/search", json={"query": "x", "filters": {"tags": ["\x00"]}}, headers=headers
        ),
        await client.get("/api/v1/kb/documents", params={"tag": "a\x00"}, headers=headers),
        await client.get("/api/v1/agent/conversations?x=%00", headers=headers),
    ]
    for response in sent:
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error"] == "nul_character"
        assert "Remove it" in body["detail"]
        assert body["request_id"] == response.headers["X-Request-ID"]
    me = await client.get("/api/v1/users/me", headers=headers)
    assert me.json()["full_name"] == "Test", "nothing was changed"
    # A backslash followed by "u0000" is text, not NUL.
    renamed = await client.patch(
        "/api/v1/users/me", json={"full_name": "C:\\u0000"}, headers=headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["full_name"] == "C:\\u0000"


async def test_offset_past_any_integer_column_is_a_validation_error(
    client: httpx.AsyncClient,
) -> None:
    # 2**63 overflowed the database's integer parameter: a 500 on both backends.
    account = await register(client)
    for path in ("/api/v1/agent/conversations", "/api/v1/kb/documents", "/api/v1/approvals"):
        response = await client.get(path, params={"offset": 2**63}, headers=account.headers)
        assert response.status_code == 422, response.text
        assert response.json()["meta"]["fields"] == ["query.offset"]
        last = await client.get(path, params={"offset": 2**31 - 1}, headers=account.headers)
        assert last.status_code == 200, last.text
        assert last.json()["items"] == []


async def test_unhandled_error_is_500_without_internals(
    app_factory: AppFactory, settings: Settings
) -> None:
    app = await app_factory(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal_error"
    assert "secret" not in response.text
    assert body["request_id"] == response.headers["X-Request-ID"]


async def test_first_admin_created_at_start(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(admin_email="Root@Example.com", admin_password="admin-password-1")
    app = await app_factory(settings)
    async with client_for(app) as http:
        login = await http.post(
            "/api/v1/auth/login",
            json={"email": "root@example.com", "password": "admin-password-1"},
        )
        assert login.status_code == 200
        assert login.json()["user"]["role"] == "admin"
        token = login.json()["access_token"]
        users = await http.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert users.status_code == 200


async def test_state_survives_a_new_app_instance(
    app_factory: AppFactory, settings: Settings
) -> None:
    first = await app_factory(settings)
    async with client_for(first) as http:
        account = await register(http)
    await app_factory.stop(first)
    second = await app_factory(settings)
    async with client_for(second) as http:
        me = await http.get("/api/v1/users/me", headers=account.headers)
        assert me.status_code == 200
        assert me.json()["email"] == account.email


async def test_jwt_secret_is_generated_once_and_kept(settings_factory: SettingsFactory) -> None:
    first = settings_factory(jwt_secret=None)
    key = first.jwt_signing_key
    assert len(key) >= 32
    assert (first.data_dir / "jwt_secret").read_text() == key
    assert settings_factory(jwt_secret=None).jwt_signing_key == key


async def test_migrations_upgrade_and_downgrade(
    settings_factory: SettingsFactory, backend: str
) -> None:
    if backend == "postgres":
        # A database of its own, so the shared test schema is untouched.
        import asyncpg

        from tests.conftest import PG_ADMIN_URL

        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute('DROP DATABASE IF EXISTS "mai_migration_roundtrip"')
        await admin.execute('CREATE DATABASE "mai_migration_roundtrip"')
        await admin.close()
        base = PG_ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1]
        settings = settings_factory(
            database_url=f"postgresql+asyncpg://{base}/mai_migration_roundtrip"
        )
    else:
        settings = settings_factory()
    engine = create_engine(settings)
    try:
        await upgrade_schema(engine)
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"users", "refresh_tokens"} <= tables
        await downgrade_schema(engine, "base")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert tables <= {"alembic_version"}
        await upgrade_schema(engine)
    finally:
        await engine.dispose()
    if backend == "postgres":
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute('DROP DATABASE IF EXISTS "mai_migration_roundtrip" WITH (FORCE)')
        await admin.close()


def test_migration_history_has_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, script.get_heads()
    # The start skips Alembic when the database is at SCHEMA_HEAD: it must be the real head.
    assert script.get_heads() == [SCHEMA_HEAD], "set app.core.db.SCHEMA_HEAD to the new head"
    # Linear: no revision has more than one parent, so `alembic revision` just works.
    assert all(not isinstance(rev.down_revision, tuple) for rev in script.walk_revisions())


async def test_database_stamped_with_the_old_feature_heads_upgrades(
    settings_factory: SettingsFactory,
) -> None:
    # Databases migrated when each feature had its own branch carry four revisions at once.
    settings = settings_factory()
    engine = create_engine(settings)
    try:
        # At 0006 exactly, whatever came after it (the shared PostgreSQL test database is at
        # head already): the old stamps mean the revisions after 0006 have not run.
        await upgrade_schema(engine)
        await downgrade_schema(engine, "0006_approvals")
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM alembic_version"))
            for rev in ("0003_usage", "0004_feedback", "0005_kb", "0006_approvals"):
                await conn.execute(
                    text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": rev}
                )
        await upgrade_schema(engine)
        assert await pending_migrations(engine) == set()
        async with engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert len(versions) == 1
    finally:
        await engine.dispose()
