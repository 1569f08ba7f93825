"""GET /metrics: format, token protection, route-template labels, scrape-time gauges."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account, AppFactory, SettingsFactory, client_for, register
from tests.observability.promtext import parse, series, value

pytestmark = pytest.mark.usefixtures("backend")


async def test_metrics_is_prometheus_text_with_http_and_mai_series(
    client: httpx.AsyncClient, user: Account
) -> None:
    assert (await client.get("/health")).status_code in (200, 503)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.text)
    names = {name for name, _ in samples}
    # HTTP metrics by the instrumentator, under MAI's namespace.
    assert value(samples, "mai_http_requests_total", handler="/health", method="GET", status="2xx")
    assert "mai_http_request_duration_seconds_bucket" in names
    # MAI's own families are declared even before anything recorded them.
    for family in (
        "mai_db_pool_connections_in_use",
        "mai_db_pool_size",
        "mai_active_users",
        "mai_approvals_pending",
    ):
        assert family in names, family
    # The user fixture signed up a moment ago: at least one active user.
    assert value(samples, "mai_active_users") >= 1
    # /metrics itself is not counted.
    assert all(s.get("handler") != "/metrics" for s in series(samples, "mai_http_requests_total"))


async def test_db_pool_gauge_reads_the_pool(app: FastAPI, client: httpx.AsyncClient) -> None:
    from prometheus_client import REGISTRY

    engine = app.state.resources.engine
    pool = engine.sync_engine.pool

    async def settled(read: Callable[[], Awaitable[float | None]]) -> float | None:
        # The service's background workers check connections out too: read again until no
        # checkout happened between the gauge and the pool's own count.
        for _ in range(50):
            if (gauge := await read()) == pool.checkedout():
                return gauge
            await asyncio.sleep(0.02)
        return await read()

    async def scraped() -> float:
        return value(parse((await client.get("/metrics")).text), "mai_db_pool_connections_in_use")

    async def registered() -> float | None:
        return REGISTRY.get_sample_value("mai_db_pool_connections_in_use")

    async with engine.connect():
        in_use = await settled(scraped)
        assert in_use == pool.checkedout()
        assert in_use is not None
        assert in_use >= 1
        samples = parse((await client.get("/metrics")).text)
        assert value(samples, "mai_db_pool_size") == pool.size()
    # Returned to the pool: the checkin hook updated the gauge without a scrape.
    assert await settled(registered) == pool.checkedout()


async def test_route_template_labels_not_raw_paths(
    client: httpx.AsyncClient, admin: Account
) -> None:
    before = parse((await client.get("/metrics")).text)
    first, second = uuid.uuid4(), uuid.uuid4()
    for user_id in (first, second):
        response = await client.get(f"/api/v1/users/{user_id}", headers=admin.headers)
        assert response.status_code == 404
    samples = parse((await client.get("/metrics")).text)
    labels = {"handler": "/api/v1/users/{user_id}", "method": "GET", "status": "4xx"}
    assert value(samples, "mai_http_requests_total", **labels) - value(
        before, "mai_http_requests_total", **labels
    ) == pytest.approx(2)
    handlers = {s["handler"] for s in series(samples, "mai_http_requests_total")}
    assert not any(str(first) in h or str(second) in h for h in handlers)


async def test_unknown_paths_share_one_series(client: httpx.AsyncClient) -> None:
    for path in ("/no-such-page-1", "/no-such-page-2"):
        assert (await client.get(path)).status_code == 404
    handlers = {
        s["handler"]
        for s in series(parse((await client.get("/metrics")).text), "mai_http_requests_total")
    }
    assert "none" in handlers
    assert not any("no-such-page" in h for h in handlers)


async def test_metrics_token_protects_the_endpoint(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(settings_factory(metrics_token="scrape-secret-1"))
    async with client_for(app) as http:
        missing = await http.get("/metrics", headers={"X-Request-ID": "scrape-1"})
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        body = missing.json()
        assert body["error"] == "metrics_token_required"
        assert "MAI_METRICS_TOKEN" in body["detail"]
        assert body["request_id"] == "scrape-1"
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        basic = await http.get("/metrics", headers={"Authorization": "Basic scrape-secret-1"})
        assert basic.status_code == 401
        ok = await http.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})
        assert ok.status_code == 200
        assert "mai_db_pool_connections_in_use" in ok.text
        # The rest of the API is unaffected by the metrics token.
        await register(http)


async def test_metrics_can_be_turned_off(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(settings_factory(metrics_enabled=False))
    async with client_for(app) as http:
        response = await http.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
