"""Users API: profile, password change, admin management, inactive users."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import Account, AccountFactory

pytestmark = pytest.mark.usefixtures("backend")


async def test_update_me_name(client: httpx.AsyncClient, user: Account) -> None:
    response = await client.patch(
        "/api/v1/users/me", headers=user.headers, json={"full_name": "  New Name "}
    )
    assert response.status_code == 200
    assert response.json()["full_name"] == "New Name"


async def test_password_change_needs_current_password(
    client: httpx.AsyncClient, user: Account
) -> None:
    missing = await client.patch(
        "/api/v1/users/me", headers=user.headers, json={"password": "brand-new-pass"}
    )
    assert missing.status_code == 400
    assert missing.json()["error"] == "current_password_required"
    wrong = await client.patch(
        "/api/v1/users/me",
        headers=user.headers,
        json={"password": "brand-new-pass", "current_password": "not-it-at-all"},
    )
    assert wrong.status_code == 400
    ok = await client.patch(
        "/api/v1/users/me",
        headers=user.headers,
        json={"password": "brand-new-pass", "current_password": user.password},
    )
    assert ok.status_code == 200
    old = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    assert old.status_code == 401
    new = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "brand-new-pass"}
    )
    assert new.status_code == 200


async def test_unknown_field_is_rejected(client: httpx.AsyncClient, user: Account) -> None:
    response = await client.patch("/api/v1/users/me", headers=user.headers, json={"role": "admin"})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_non_admin_gets_403_on_admin_routes(client: httpx.AsyncClient, user: Account) -> None:
    some_id = uuid.uuid4()
    for method, path in [
        ("GET", "/api/v1/users"),
        ("GET", f"/api/v1/users/{some_id}"),
        ("PATCH", f"/api/v1/users/{some_id}"),
        ("DELETE", f"/api/v1/users/{some_id}"),
    ]:
        response = await client.request(
            method, path, headers=user.headers, json={} if method == "PATCH" else None
        )
        assert response.status_code == 403, (method, path)
        assert response.json()["error"] == "admin_required"


async def test_admin_lists_and_pages_users(
    client: httpx.AsyncClient, admin: Account, account_factory: AccountFactory
) -> None:
    for _ in range(3):
        await account_factory()
    first = await client.get("/api/v1/users?limit=2&offset=0", headers=admin.headers)
    assert first.status_code == 200
    body = first.json()
    assert body["total"] == 4
    assert len(body["items"]) == 2
    rest = await client.get("/api/v1/users?limit=2&offset=2", headers=admin.headers)
    ids = {u["id"] for u in body["items"]} | {u["id"] for u in rest.json()["items"]}
    assert len(ids) == 4
    bad = await client.get("/api/v1/users?limit=1000", headers=admin.headers)
    assert bad.status_code == 422


async def test_admin_reads_updates_and_deletes(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    got = await client.get(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert got.status_code == 200
    assert got.json()["email"] == user.email
    promoted = await client.patch(
        f"/api/v1/users/{user.id}", headers=admin.headers, json={"role": "admin"}
    )
    assert promoted.json()["role"] == "admin"
    listed = await client.get("/api/v1/users", headers=user.headers)
    assert listed.status_code == 200  # the promotion takes effect on the live token
    deleted = await client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert gone.status_code == 404
    assert gone.json()["error"] == "user_not_found"
    token_of_deleted = await client.get("/api/v1/users/me", headers=user.headers)
    assert token_of_deleted.status_code == 401


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient, admin: Account) -> None:
    unknown = await client.patch(
        f"/api/v1/users/{uuid.uuid4()}", headers=admin.headers, json={"is_active": False}
    )
    assert unknown.status_code == 404
    malformed = await client.get("/api/v1/users/not-a-uuid", headers=admin.headers)
    assert malformed.status_code == 422


async def test_inactive_user_cannot_login_or_use_tokens(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    response = await client.patch(
        f"/api/v1/users/{user.id}", headers=admin.headers, json={"is_active": False}
    )
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    me = await client.get("/api/v1/users/me", headers=user.headers)
    assert me.status_code in (401, 403)
    login = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    # The same answer as a wrong password: it must not confirm that the password was right.
    assert login.status_code == 401
    assert login.json()["error"] == "invalid_credentials"
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refresh.status_code in (401, 403)
    # Reactivated, they can sign in again.
    await client.patch(f"/api/v1/users/{user.id}", headers=admin.headers, json={"is_active": True})
    again = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    assert again.status_code == 200


async def test_admin_cannot_lock_themselves_out(client: httpx.AsyncClient, admin: Account) -> None:
    demote = await client.patch(
        f"/api/v1/users/{admin.id}", headers=admin.headers, json={"role": "user"}
    )
    assert demote.status_code == 409
    delete = await client.delete(f"/api/v1/users/{admin.id}", headers=admin.headers)
    assert delete.status_code == 409
