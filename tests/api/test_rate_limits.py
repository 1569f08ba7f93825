"""Rate limits: sliding windows on a controlled clock, headers, shared Redis, Redis outage."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from app.core.clock import FrozenClock
from tests.conftest import AppFactory, SettingsFactory, client_for, register

pytestmark = pytest.mark.usefixtures("backend")


async def _login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_login_limited_per_ip_with_sliding_window(
    app_factory: AppFactory, settings_factory: SettingsFactory, clock: FrozenClock
) -> None:
    app = await app_factory(settings_factory(auth_rate_limit_per_minute=5))
    async with client_for(app) as http:
        account = await register(http)  # hit 1
        for _ in range(3):  # hits 2-4 at t=0
            response = await _login(http, account.email, "wrong-password")
            assert response.status_code == 401
            assert response.headers["X-RateLimit-Limit"] == "5"
        clock.advance(30)
        ok = await _login(http, account.email, account.password)  # hit 5 at t=30
        assert ok.status_code == 200
        assert ok.headers["X-RateLimit-Remaining"] == "0"
        refused = await _login(http, account.email, account.password)
        assert refused.status_code == 429
        body = refused.json()
        assert body["error"] == "rate_limited"
        assert set(body) >= {"error", "detail", "request_id"}
        assert int(refused.headers["Retry-After"]) == 30  # the t=0 hits leave the window at 60
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        clock.advance(31)  # t=61: the four t=0 hits have slid out, the t=30 one remains
        again = await _login(http, account.email, account.password)
        assert again.status_code == 200
        assert again.headers["X-RateLimit-Remaining"] == "3"


async def test_api_limited_per_user(
    app_factory: AppFactory, settings_factory: SettingsFactory, clock: FrozenClock
) -> None:
    app = await app_factory(settings_factory(rate_limit_per_minute=3))
    async with client_for(app) as http:
        alice = await register(http)
        bob = await register(http)
        for remaining in ("2", "1", "0"):
            response = await http.get("/api/v1/users/me", headers=alice.headers)
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Remaining"] == remaining
        limited = await http.get("/api/v1/users/me", headers=alice.headers)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "60"
        # Another user has a budget of their own.
        assert (await http.get("/api/v1/users/me", headers=bob.headers)).status_code == 200
        clock.advance(timedelta(seconds=60))
        assert (await http.get("/api/v1/users/me", headers=alice.headers)).status_code == 200


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_two_instances_share_one_redis_limit(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    # Two service processes on one PostgreSQL + Redis (the embedded default is single-process).
    settings = settings_factory(rate_limit_per_minute=4, jwt_secret="s" * 40)
    first = await app_factory(settings)
    second = await app_factory(settings.model_copy(update={"data_dir": settings.data_dir / "b"}))
    async with client_for(first) as a, client_for(second) as b:
        account = await register(a)
        assert (await a.get("/api/v1/users/me", headers=account.headers)).status_code == 200
        assert (await b.get("/api/v1/users/me", headers=account.headers)).status_code == 200
        assert (await a.get("/api/v1/users/me", headers=account.headers)).status_code == 200
        last = await b.get("/api/v1/users/me", headers=account.headers)
        assert last.status_code == 200
        assert last.headers["X-RateLimit-Remaining"] == "0"
        assert (await a.get("/api/v1/users/me", headers=account.headers)).status_code == 429
        assert (await b.get("/api/v1/users/me", headers=account.headers)).status_code == 429


async def test_redis_down_requests_still_served(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    # Nothing listens on port 1: every Redis call fails; limits then hold per process.
    app = await app_factory(
        settings_factory(redis_url="redis://127.0.0.1:1/0", rate_limit_per_minute=3)
    )
    async with client_for(app) as http:
        limited = await register(http)
        served = [
            (await http.get("/api/v1/users/me", headers=limited.headers)).status_code
            for _ in range(4)
        ]
        # Over the limit of 3: the in-process fallback limits instead of letting all through.
        assert served == [200, 200, 200, 429]
        account = await register(http)
        assert (await http.get("/api/v1/users/me", headers=account.headers)).status_code == 200
        logout = await http.post("/api/v1/auth/logout", headers=account.headers)
        assert logout.status_code == 204
        # The deny-list is down, but the revoked session in the database still refuses the token.
        assert (await http.get("/api/v1/users/me", headers=account.headers)).status_code == 401
        health = (await http.get("/health")).json()
        redis = next(c for c in health["components"] if c["name"] == "redis")
        assert redis["status"] == "unhealthy"
        assert health["status"] == "degraded"
