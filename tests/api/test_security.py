"""Security hardening: admin bootstrap, registration modes, enumeration, password quality,
request limits, live stream authorisation, proxies and lockout, exposure by default."""

from __future__ import annotations

import statistics
import time
import uuid

import httpx
import pytest
from pydantic import ValidationError

from app.core.config import Settings
from app.models import User
from app.services.users import AdminBootstrapError
from tests.conftest import Account, AccountFactory, AppFactory, SettingsFactory, client_for

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
