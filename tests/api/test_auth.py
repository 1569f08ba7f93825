"""Auth API: register, login, refresh rotation and theft detection, logout, token checks."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import httpx
import pytest
from jose import jwt

from app.core.clock import FrozenClock
from tests.conftest import Account, AccountFactory

pytestmark = pytest.mark.usefixtures("backend")


async def test_register_returns_user_and_tokens(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "  Alice@Example.COM ", "password": "s3cret-pass", "full_name": "Alice"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["role"] == "user"
    assert body["user"]["full_name"] == "Alice"
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]


async def test_duplicate_email_is_409_case_insensitive(client: httpx.AsyncClient) -> None:
    payload = {"email": "bob@example.com", "password": "s3cret-pass"}
    assert (await client.post("/api/v1/auth/register", json=payload)).status_code == 201
    payload["email"] = "BOB@example.com"
    response = await client.post("/api/v1/auth/register", json=payload)
    assert response.status_code == 409
    assert response.json()["error"] == "email_taken"


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short", "password_too_short"),
        ("x" * 73, "password_too_long"),
        ("é" * 37, "password_too_long"),  # 37 characters but 74 bytes
    ],
)
async def test_password_length_in_bytes(
    client: httpx.AsyncClient, password: str, code: str
) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": "pw@example.com", "password": password}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == code
    assert "bytes" in body["detail"]


async def test_password_of_exactly_72_bytes_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": "max@example.com", "password": "y" * 72}
    )
    assert response.status_code == 201
    login = await client.post(
        "/api/v1/auth/login", json={"email": "max@example.com", "password": "y" * 72}
    )
    assert login.status_code == 200


async def test_malformed_email_is_422_in_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "password": "s3cret-pass"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert "email" in body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]


async def test_login_and_wrong_password(client: httpx.AsyncClient, user: Account) -> None:
    ok = await client.post(
        "/api/v1/auth/login", json={"email": user.email.upper(), "password": user.password}
    )
    assert ok.status_code == 200
    assert ok.json()["user"]["last_login_at"] is not None
    bad = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "wrong-password"}
    )
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_credentials"
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "ghost@example.com", "password": "whatever1"}
    )
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == bad.json()["detail"]


async def test_refresh_rotates_and_reuse_revokes_family(
    client: httpx.AsyncClient, user: Account
) -> None:
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != user.refresh_token

    # The old token again: theft detected, the whole family goes.
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert reuse.status_code == 401
    assert reuse.json()["error"] == "token_reused"

    # Even the newest refresh token of that family and its access token are dead now.
    newest = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert newest.status_code == 401
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {rotated['access_token']}"}
    )
    assert me.status_code == 401


async def test_refresh_of_unknown_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
    assert response.status_code == 401


async def test_logout_refuses_access_token_and_refresh(
    client: httpx.AsyncClient, account_factory: AccountFactory
) -> None:
    account = await account_factory()
    other_session = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    response = await client.post("/api/v1/auth/logout", headers=account.headers)
    assert response.status_code == 204
    again = await client.get("/api/v1/users/me", headers=account.headers)
    assert again.status_code == 401
    assert again.json()["error"] == "token_revoked"
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refresh.status_code == 401
    # Another device's session is untouched.
    other = other_session.json()
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {other['access_token']}"}
    )
    assert me.status_code == 200


async def test_expired_access_token_is_401(
    client: httpx.AsyncClient, user: Account, clock: FrozenClock
) -> None:
    clock.advance(timedelta(minutes=16))
    response = await client.get("/api/v1/users/me", headers=user.headers)
    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"
    # The refresh token still works and gives a fresh access token.
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert refreshed.status_code == 200


async def test_expired_refresh_token_is_401(
    client: httpx.AsyncClient, user: Account, clock: FrozenClock
) -> None:
    clock.advance(timedelta(days=31))
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_tampered_alg_none_and_foreign_tokens_are_401(
    client: httpx.AsyncClient, user: Account
) -> None:
    header, payload, signature = user.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    tampered = f"{header}.{_b64(claims)}.{signature}"
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    foreign = jwt.encode(claims, "another-secret-entirely-another-one", algorithm="HS256")
    hs512 = jwt.encode(claims, "x" * 64, algorithm="HS512")
    for token in (tampered, alg_none, foreign, hs512, "garbage", ""):
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, token
        assert response.json()["error"] in ("invalid_token", "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, user: Account
) -> None:
    response = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {user.refresh_token}"}
    )
    assert response.status_code == 401


async def test_missing_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert set(response.json()) >= {"error", "detail", "request_id"}


async def test_token_without_expiry_is_401(
    client: httpx.AsyncClient, app: object, user: Account
) -> None:
    settings = app.state.settings  # type: ignore[attr-defined]
    payload = user.access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    del claims["exp"]
    token = jwt.encode(claims, settings.jwt_signing_key, algorithm="HS256")
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_tokens_follow_the_injected_clock_in_the_past(
    app_factory: object, settings_factory: object, clock: FrozenClock
) -> None:
    from datetime import UTC, datetime

    from tests.conftest import client_for, register

    clock.set(datetime(2020, 1, 1, tzinfo=UTC))
    app = await app_factory(settings_factory())  # type: ignore[operator]
    async with client_for(app) as http:
        account = await register(http)
        me = await http.get("/api/v1/users/me", headers=account.headers)
        assert me.status_code == 200
