"""Security hardening: admin bootstrap, registration modes, enumeration, password quality,
request limits, live stream authorisation, proxies and lockout, exposure by default."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from app.core.clock import FrozenClock
from app.core.config import Settings
from app.models import User
from app.services.users import AdminBootstrapError
from tests.conftest import (
    Account,
    AccountFactory,
    AppFactory,
    SettingsFactory,
    client_for,
    register,
)

pytestmark = pytest.mark.usefixtures("backend")

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"


# Admin bootstrap and registration modes.


async def test_admin_email_of_an_existing_user_refuses_start_and_promotes_nobody(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    first = await app_factory(settings_factory())
    async with client_for(first) as http:
        squatter = await http.post(
            REGISTER, json={"email": "root@example.com", "password": "squatter-pass-1"}
        )
        assert squatter.status_code == 201
    await app_factory.stop(first)

    settings = settings_factory(admin_email="root@example.com", admin_password="admin-password-1")
    with pytest.raises(AdminBootstrapError, match=r"mai create-admin root@example\.com"):
        await app_factory(settings)

    again = await app_factory(settings_factory())
    async with again.state.resources.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(squatter.json()["user"]["id"]))
        assert user is not None
        assert user.role == "user"


def test_admin_email_that_can_never_sign_in_is_rejected() -> None:
    with pytest.raises(ValidationError, match="can never sign in"):
        Settings(  # type: ignore[call-arg]
            _env_file=None, admin_email="admin@mai.local", admin_password="admin-password-1"
        )


def test_registration_defaults_to_invite_in_production() -> None:
    production = Settings(_env_file=None, env="production", jwt_secret="x" * 40)  # type: ignore[call-arg]
    assert production.effective_registration == "invite"
    assert Settings(_env_file=None).effective_registration == "open"  # type: ignore[call-arg]


async def test_closed_registration_lets_only_admins_create_users(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(
        settings_factory(
            registration="closed",
            admin_email="root@example.com",
            admin_password="admin-password-1",
        )
    )
    async with client_for(app) as http:
        refused = await http.post(
            REGISTER, json={"email": "new@example.com", "password": "fine-pass-1"}
        )
        assert refused.status_code == 403
        assert refused.json()["error"] == "registration_closed"
        login = await http.post(
            LOGIN, json={"email": "root@example.com", "password": "admin-password-1"}
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        created = await http.post(
            "/api/v1/users",
            headers=admin,
            json={"email": "new@example.com", "password": "fine-pass-1"},
        )
        assert created.status_code == 201, created.text
        assert created.json()["role"] == "user"
        signed_in = await http.post(
            LOGIN, json={"email": "new@example.com", "password": "fine-pass-1"}
        )
        assert signed_in.status_code == 200
        user = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        forbidden = await http.post(
            "/api/v1/users", headers=user, json={"email": "x@example.com", "password": "fine-1-X"}
        )
        assert forbidden.status_code == 403


async def test_invite_registration_needs_a_single_use_code(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(
        settings_factory(
            registration="invite",
            admin_email="root@example.com",
            admin_password="admin-password-1",
        )
    )
    async with client_for(app) as http:
        # Without a code, a taken address and a free one get the same answer.
        for email in ("root@example.com", "free@example.com"):
            missing = await http.post(REGISTER, json={"email": email, "password": "fine-pass-1"})
            assert missing.status_code == 403
            assert missing.json()["error"] == "invite_required"
        bogus = await http.post(
            REGISTER,
            json={"email": "root@example.com", "password": "fine-pass-1", "invite_code": "nope"},
        )
        assert bogus.status_code == 403
        assert bogus.json()["error"] == "invite_invalid"

        login = await http.post(
            LOGIN, json={"email": "root@example.com", "password": "admin-password-1"}
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        invite = await http.post("/api/v1/users/invites", headers=admin, json={})
        assert invite.status_code == 201, invite.text
        code = invite.json()["code"]
        joined = await http.post(
            REGISTER,
            json={"email": "guest@example.com", "password": "fine-pass-1", "invite_code": code},
        )
        assert joined.status_code == 201, joined.text
        reused = await http.post(
            REGISTER,
            json={"email": "other@example.com", "password": "fine-pass-1", "invite_code": code},
        )
        assert reused.status_code == 403
        assert reused.json()["error"] == "invite_invalid"

        # An invite for one address is no good for another.
        named = await http.post(
            "/api/v1/users/invites", headers=admin, json={"email": "Named@Example.com"}
        )
        named_code = named.json()["code"]
        wrong = await http.post(
            REGISTER,
            json={
                "email": "else@example.com",
                "password": "fine-pass-1",
                "invite_code": named_code,
            },
        )
        assert wrong.status_code == 403
        right = await http.post(
            REGISTER,
            json={
                "email": "named@example.com",
                "password": "fine-pass-1",
                "invite_code": named_code,
            },
        )
        assert right.status_code == 201


# No user enumeration.


async def test_unknown_email_takes_as_long_as_a_wrong_password(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(settings_factory(bcrypt_rounds=10))
    async with client_for(app) as http:
        registered = await http.post(
            REGISTER, json={"email": "known@example.com", "password": "right-pass-1"}
        )
        assert registered.status_code == 201

        async def timed(email: str) -> float:
            started = time.perf_counter()
            response = await http.post(LOGIN, json={"email": email, "password": "wrong-pass-1"})
            assert response.status_code == 401
            assert response.json()["error"] == "invalid_credentials"
            return time.perf_counter() - started

        await timed("ghost@example.com")  # the first one also makes the dummy hash
        unknown = statistics.median([await timed("ghost@example.com") for _ in range(5)])
        known = statistics.median([await timed("known@example.com") for _ in range(5)])
    # bcrypt at cost 10 dominates both; a cheap dummy hash made the unknown one ~60x faster.
    assert unknown > known * 0.5, (unknown, known)


# Password quality.


@pytest.mark.parametrize(
    ("email", "password", "code"),
    [
        ("pw@example.com", "qwertyuiop", "password_too_common"),
        ("pw@example.com", "Password123", "password_too_common"),
        ("alice.smith@example.com", "my-Alice.Smith-2024", "password_contains_email"),
        ("pw@example.com", "zebrafish1", "password_too_simple"),
    ],
)
async def test_weak_passwords_are_refused_naming_the_rule(
    client: httpx.AsyncClient, email: str, password: str, code: str
) -> None:
    response = await client.post(REGISTER, json={"email": email, "password": password})
    assert response.status_code == 400
    assert response.json()["error"] == code


async def test_long_or_varied_passwords_pass_and_the_rule_applies_to_changes(
    client: httpx.AsyncClient, account_factory: AccountFactory
) -> None:
    for email, password in (
        ("long@example.com", "correcthorsebatterystaple"),
        ("mixed@example.com", "Zebra-fish1"),
    ):
        response = await client.post(REGISTER, json={"email": email, "password": password})
        assert response.status_code == 201, response.text
    account: Account = await account_factory()
    change = await client.patch(
        "/api/v1/users/me",
        headers=account.headers,
        json={"password": "iloveyou", "current_password": account.password},
    )
    assert change.status_code == 400
    assert change.json()["error"] == "password_too_common"


# A real server, for what the in-process transport cannot show (endless streams, sockets).


@contextlib.asynccontextmanager
async def serving(app: FastAPI, **config: Any) -> AsyncIterator[str]:
    """Serve an app (already started) with uvicorn on a free port; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", **config)
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class SSEReader:
    """Reads events from a live SSE response, one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 10) -> tuple[str, Any]:
        """The next event's name and decoded data; AssertionError when the stream ended."""

        async def read() -> tuple[str, Any]:
            name, data = "message", []
            async for line in self.lines:
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    return name, json.loads("\n".join(data))
            raise AssertionError("the stream ended")

        return await asyncio.wait_for(read(), timeout)


# Request limits before auth.


async def test_oversized_body_is_refused_while_streaming_before_auth(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(settings_factory(max_body_bytes=64 * 1024))
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b'{"x": "' + b"a" * 16 * 1024
        for _ in range(100 * 64):  # 100 MB if read whole
            sent += len(chunk)
            yield chunk

    async with client_for(app) as http:
        # No Content-Length, no token: refused once the limit is passed, not at the end.
        response = await http.post(
            "/api/v1/agent/query", content=endless(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        assert "MAI_MAX_BODY_BYTES" in response.json()["detail"]
        assert sent < 256 * 1024
        declared = await http.post(
            LOGIN,
            content=b"{}",
            headers={"Content-Type": "application/json", "Content-Length": str(10**9)},
        )
        assert declared.status_code == 413


async def test_deep_json_and_stalled_bodies_are_refused(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(settings_factory(request_read_timeout_seconds=0.3))
    async with client_for(app) as http:
        deep = await http.post(
            LOGIN, content=b"[" * 5000 + b"]" * 5000, headers={"Content-Type": "application/json"}
        )
        assert deep.status_code == 400
        assert deep.json()["error"] == "json_too_deep"
        # Brackets inside strings are text, not nesting.
        text = await http.post(LOGIN, json={"email": "a@example.com", "password": "[" * 500})
        assert text.status_code == 401

        async def stalls() -> AsyncIterator[bytes]:
            yield b'{"email": '
            await asyncio.sleep(2)
            yield b'"a@example.com"}'

        stalled = await http.post(
            LOGIN, content=stalls(), headers={"Content-Type": "application/json"}
        )
        assert stalled.status_code == 408
        assert stalled.json()["error"] == "request_timeout"


async def test_slow_request_headers_are_cut_off() -> None:
    from app.core.http_server import HeaderTimeoutH11Protocol

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    HeaderTimeoutH11Protocol.timeout_seconds = 0.5
    try:
        async with serving(app, http=HeaderTimeoutH11Protocol) as url:  # type: ignore[arg-type]
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            await writer.drain()
            started = time.perf_counter()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            assert time.perf_counter() - started < 3
            writer.close()
            async with httpx.AsyncClient() as http:
                assert (await http.get(url)).text == "ok"  # prompt clients are served
    finally:
        HeaderTimeoutH11Protocol.timeout_seconds = None


async def test_streams_per_user_are_capped(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(settings_factory(max_streams_per_user=2))
    async with client_for(app) as local:
        account = await register(local)
        other = await register(local)
    url_path = "/api/v1/approvals/events"
    async with serving(app) as url, httpx.AsyncClient(timeout=30) as http:
        async with (
            http.stream("GET", url + url_path, headers=account.headers) as first,
            http.stream("GET", url + url_path, headers=account.headers) as second,
        ):
            # Readers are kept: a dropped line iterator closes its response.
            readers = [SSEReader(first), SSEReader(second)]
            for reader in readers:
                assert (await reader.next())[0] == "ready"
            third = await http.get(url + url_path, headers=account.headers)
            assert third.status_code == 429
            assert third.json()["error"] == "too_many_streams"
            async with http.stream("GET", url + url_path, headers=other.headers) as theirs:
                their_reader = SSEReader(theirs)
                assert (await their_reader.next())[0] == "ready"
            assert stream_slots_open(app, account) == 2
        # Closed streams give their slots back.
        for _ in range(50):
            if stream_slots_open(app, account) == 0:
                break
            await asyncio.sleep(0.05)
        async with http.stream("GET", url + url_path, headers=account.headers) as again:
            assert again.status_code == 200


def stream_slots_open(app: FastAPI, account: Account) -> int:
    """How many streams the app counts open for an account."""
    slots = getattr(app.state, "stream_slots", None)
    return 0 if slots is None else slots.open_for(uuid.UUID(account.id))


# Authorisation stays live on long connections.


async def test_demoted_admin_stops_receiving_other_users_approvals_at_once(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(
        settings_factory(admin_email="root@example.com", admin_password="admin-password-1")
    )
    async with client_for(app) as local:
        login = await local.post(
            LOGIN, json={"email": "root@example.com", "password": "admin-password-1"}
        )
        root = {"Authorization": f"Bearer {login.json()['access_token']}"}
        deputy = await register(local)
        promoted = await local.patch(
            f"/api/v1/users/{deputy.id}", headers=root, json={"role": "admin"}
        )
        assert promoted.status_code == 200
    broker = app.state.resources.approval_events
    someone_else = str(uuid.uuid4())
    async with (
        serving(app) as url,
        httpx.AsyncClient(timeout=30) as http,
        http.stream("GET", url + "/api/v1/approvals/events", headers=deputy.headers) as stream,
    ):
        reader = SSEReader(stream)
        assert (await reader.next())[0] == "ready"
        await broker.publish(
            {"event": "approval.requested", "user_id": someone_else, "approval": {"id": "a1"}}
        )
        assert (await reader.next()) == ("approval.requested", {"approval": {"id": "a1"}})
        async with client_for(app) as local:
            demoted = await local.patch(
                f"/api/v1/users/{deputy.id}", headers=root, json={"role": "user"}
            )
            assert demoted.status_code == 200
        await broker.publish(
            {"event": "approval.requested", "user_id": someone_else, "approval": {"id": "a2"}}
        )
        name, data = await reader.next()
        assert name == "error"
        assert data["error"] == "role_changed"
        with pytest.raises(AssertionError, match="the stream ended"):
            await reader.next()


async def test_streams_are_rechecked_without_events(
    app_factory: AppFactory, settings_factory: SettingsFactory, admin_settings: Settings
) -> None:
    app = await app_factory(admin_settings.model_copy(update={"stream_auth_recheck_seconds": 0.2}))
    async with client_for(app) as local:
        login = await local.post(
            LOGIN, json={"email": "root@example.com", "password": "admin-password-1"}
        )
        root = {"Authorization": f"Bearer {login.json()['access_token']}"}
        user = await register(local)
        leaver = await register(local)
    async with (
        serving(app) as url,
        httpx.AsyncClient(timeout=30) as http,
        http.stream("GET", url + "/api/v1/approvals/events", headers=user.headers) as disabled,
        http.stream("GET", url + "/api/v1/approvals/events", headers=leaver.headers) as out,
    ):
        first, second = SSEReader(disabled), SSEReader(out)
        assert (await first.next())[0] == "ready"
        assert (await second.next())[0] == "ready"
        async with client_for(app) as local:
            off = await local.patch(
                f"/api/v1/users/{user.id}", headers=root, json={"is_active": False}
            )
            assert off.status_code == 200
            logout = await local.post("/api/v1/auth/logout", headers=leaver.headers)
            assert logout.status_code == 204
        name, data = await first.next(timeout=5)
        # Deactivation also revokes the account's sessions: either check closes the stream.
        assert name == "error"
        assert data["error"] in ("user_inactive", "token_revoked")
        name, data = await second.next(timeout=5)
        assert (name, data["error"]) == ("error", "token_revoked")


# Trusted proxies and per-account lockout.


async def test_forwarded_for_is_honoured_only_from_trusted_proxies(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    async def attempts(app: FastAPI) -> list[int]:
        statuses = []
        async with client_for(app) as http:  # the ASGI client's address is 127.0.0.1
            for n in range(3):
                response = await http.post(
                    LOGIN,
                    json={"email": "nobody@example.com", "password": "wrong-pass-1"},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},
                )
                statuses.append(response.status_code)
        return statuses

    untrusted = await app_factory(settings_factory(auth_rate_limit_per_minute=2))
    # A forged header cannot buy a fresh per-address allowance.
    assert await attempts(untrusted) == [401, 401, 429]
    await app_factory.stop(untrusted)
    trusted = await app_factory(
        settings_factory(auth_rate_limit_per_minute=2, trusted_proxies="127.0.0.0/8")
    )
    # Behind a trusted proxy each client address has its own allowance.
    assert await attempts(trusted) == [401, 401, 401]


async def test_repeated_failures_lock_the_account_whatever_the_address(
    app_factory: AppFactory, settings_factory: SettingsFactory, clock: FrozenClock
) -> None:
    from datetime import timedelta

    app = await app_factory(settings_factory(login_max_failures=3, trusted_proxies="127.0.0.1"))
    async with client_for(app) as http:
        victim = await register(http)
        bystander = await register(http)

        async def login(account: Account, password: str, address: str) -> httpx.Response:
            return await http.post(
                LOGIN,
                json={"email": account.email, "password": password},
                headers={"X-Forwarded-For": address},
            )

        # A success starts the count again.
        for _ in range(2):
            assert (await login(victim, "wrong-pass-1", "198.51.100.1")).status_code == 401
        assert (await login(victim, victim.password, "198.51.100.1")).status_code == 200
        for n in range(3):
            assert (await login(victim, "wrong-pass-1", f"198.51.100.{n}")).status_code == 401
        locked = await login(victim, victim.password, "198.51.100.99")
        assert locked.status_code == 429
        assert locked.json()["error"] == "account_locked"
        assert int(locked.headers["Retry-After"]) > 0
        assert (await login(bystander, bystander.password, "198.51.100.1")).status_code == 200
        clock.advance(timedelta(minutes=16))
        assert (await login(victim, victim.password, "198.51.100.1")).status_code == 200


# Less exposed by default.


async def test_health_details_need_a_token(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(
        settings_factory(
            admin_email="root@example.com",
            admin_password="admin-password-1",
            metrics_token="scrape-token-1",
        )
    )
    async with client_for(app) as http:
        anonymous = (await http.get("/health")).json()
        assert set(anonymous) == {"status", "components"}
        assert all(set(c) == {"name", "status"} for c in anonymous["components"])
        assert "base_url" not in json.dumps(anonymous)
        user = await register(http)
        as_user = (await http.get("/health", headers=user.headers)).json()
        assert set(as_user) == {"status", "components"}
        login = await http.post(
            LOGIN, json={"email": "root@example.com", "password": "admin-password-1"}
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for headers in (admin, {"Authorization": "Bearer scrape-token-1"}):
            detailed = (await http.get("/health", headers=headers)).json()
            assert "version" in detailed
            llm = next(c for c in detailed["components"] if c["name"] == "llm")
            assert llm["base_url"] == app.state.settings.llm_base_url
    public = await app_factory(
        settings_factory(health_details="public", data_dir=app.state.settings.data_dir / "p")
    )
    async with client_for(public) as http:
        assert "version" in (await http.get("/health")).json()


async def test_security_headers_on_every_response(
    app_factory: AppFactory,
    settings_factory: SettingsFactory,
    user: Account,
    client: httpx.AsyncClient,
) -> None:
    me = await client.get("/api/v1/users/me", headers=user.headers)
    missing = await client.get("/api/v1/nowhere")
    for response in (me, missing):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in response.headers
    production = await app_factory(
        settings_factory(
            env="production",
            jwt_secret="p" * 40,
            data_dir=client_data_dir(client) / "production",
        )
    )
    async with client_for(production) as http:
        ready = await http.get("/ready")
        assert ready.headers["Strict-Transport-Security"].startswith("max-age=")


def client_data_dir(client: httpx.AsyncClient) -> Any:
    """The data dir of the app behind an in-process client."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return transport.app.state.settings.data_dir  # type: ignore[attr-defined]


async def test_embedded_files_are_private(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    import stat

    from tests.kb.support import HashEmbedder

    settings = settings_factory()
    app = await app_factory(settings, embedder=HashEmbedder())
    async with client_for(app) as http:
        account = await register(http)
        upload = await http.post(
            "/api/v1/kb/documents",
            headers=account.headers,
            files={"file": ("notes.txt", b"private notes", "text/plain")},
        )
        assert upload.status_code == 202, upload.text

    def mode(path: Any) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    data_dir = settings.data_dir
    assert mode(data_dir) == 0o700
    assert mode(settings.kb_vectors_path) == 0o700
    assert mode(data_dir / "vectors.lock") == 0o600
    [stored] = [p for p in settings.kb_files_dir.rglob("*") if p.is_file()]
    assert mode(stored) == 0o600
    assert mode(stored.parent) == 0o700
    if settings.sqlite_path is not None:
        assert mode(settings.sqlite_path) == 0o600
    # Files from before (or made with a loose umask) are closed at the next start.
    stray = data_dir / "left-over.txt"
    stray.write_text("x")
    stray.chmod(0o644)
    await app_factory.stop(app)
    await app_factory(settings, embedder=HashEmbedder())
    assert mode(stray) == 0o600


async def test_schema_invalid_values_are_refused_not_coerced(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    path = f"/api/v1/users/{user.id}"
    for value in (False, "5", 2.5):
        response = await client.patch(
            path, headers=admin.headers, json={"daily_token_budget": value}
        )
        assert response.status_code == 422, value
        assert response.json()["error"] == "validation_error"
    assert (await client.get(path, headers=admin.headers)).json()["daily_token_budget"] is None
    flag = await client.patch(path, headers=admin.headers, json={"is_active": "no"})
    assert flag.status_code == 422
    ok = await client.patch(path, headers=admin.headers, json={"daily_token_budget": 5})
    assert ok.json()["daily_token_budget"] == 5


async def test_upload_filenames_are_normalised(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    from tests.kb.support import HashEmbedder

    app = await app_factory(settings_factory(), embedder=HashEmbedder())
    async with client_for(app) as http:
        account = await register(http)
        # Built by hand: httpx would percent-encode the characters under test.
        name = "in\u202evoice\u200b\t.txt"
        body = (
            "--b0undary\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/plain\r\n\r\nsome text\r\n--b0undary--\r\n"
        ).encode()
        tricky = await http.post(
            "/api/v1/kb/documents",
            headers={**account.headers, "Content-Type": "multipart/form-data; boundary=b0undary"},
            content=body,
        )
        assert tricky.status_code == 202, tricky.text
        assert tricky.json()["filename"] == "invoice.txt"
        long = await http.post(
            "/api/v1/kb/documents",
            headers=account.headers,
            files={"file": ("n" * 300 + ".txt", b"other text", "text/plain")},
        )
        assert long.status_code == 422
        assert long.json()["error"] == "filename_too_long"


# The OpenAPI schema tells the truth.


async def test_openapi_documents_errors_in_the_real_shape(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    error = {"$ref": "#/components/schemas/Error"}
    me = schema["paths"]["/api/v1/users/me"]["get"]["responses"]
    assert {"401", "403", "429", "503"} <= set(me)
    assert me["401"]["content"]["application/json"]["schema"] == error
    upload = schema["paths"]["/api/v1/kb/documents"]["post"]["responses"]
    assert {"413", "415", "422"} <= set(upload)
    assert upload["422"]["content"]["application/json"]["schema"] == error
    # What the schema promises is what comes back.
    response = await client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert set(response.json()) >= set(schema["components"]["schemas"]["Error"]["required"])
