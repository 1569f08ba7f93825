"""POST /kb/documents/url: a page fetched and indexed like an upload, behind an SSRF guard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from app.core.config import Settings
from tests.conftest import AppFactory, SettingsFactory, client_for, register
from tests.graphs.http_server import serve
from tests.kb.support import HashEmbedder, wait_done

pytestmark = pytest.mark.usefixtures("backend")

PAGE = (
    b"<html><head><title>Boiler guide</title></head><body><h1>Boiler</h1>"
    b"<p>The boiler pressure must stay under three bar.</p></body></html>"
)


class Listener:
    """A TCP listener on 127.0.0.1 that only counts the connections it receives."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    """A running connection counter."""
    counter = Listener()
    server = await asyncio.start_server(counter._accept, "127.0.0.1", 0)
    counter.port = server.sockets[0].getsockname()[1]
    async with server:
        yield counter


async def _post(
    app_settings: Settings, app_factory: AppFactory, url: str
) -> tuple[int, dict, float]:
    """Ingest `url` on a fresh app: the status, the body and the seconds the request took."""
    app = await app_factory(app_settings, embedder=HashEmbedder())
    async with client_for(app) as client:
        account = await register(client)
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/kb/documents/url", headers=account.headers, json={"url": url}
        )
        elapsed = time.perf_counter() - started
    # The embedded store is single-process: the next app on this data folder needs it free.
    await app_factory.stop(app)
    return response.status_code, response.json(), elapsed


async def test_internal_addresses_are_refused_before_any_connection(
    app_factory: AppFactory, settings_factory: SettingsFactory, listener: Listener
) -> None:
    settings = settings_factory(rate_limit_per_minute=0)
    app = await app_factory(settings, embedder=HashEmbedder())
    async with client_for(app) as client:
        account = await register(client)
        for url in (
            f"http://127.0.0.1:{listener.port}/page",
            f"http://localhost:{listener.port}/page",
            f"http://[::1]:{listener.port}/page",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/intranet",
            f"http://0.0.0.0:{listener.port}/",
        ):
            response = await client.post(
                "/api/v1/kb/documents/url", headers=account.headers, json={"url": url}
            )
            assert response.status_code == 422, (url, response.text)
            assert response.json()["error"] == "url_not_allowed", url
            assert "MAI_KB_URL_ALLOWLIST" in response.json()["detail"]
        for url in ("file:///etc/passwd", "ftp://example.com/a", "http://user:pw@example.com/"):
            response = await client.post(
                "/api/v1/kb/documents/url", headers=account.headers, json={"url": url}
            )
            assert (response.status_code, response.json()["error"]) == (422, "url_not_allowed")
        listing = await client.get("/api/v1/kb/documents", headers=account.headers)
        assert listing.json()["total"] == 0
    assert listener.connections == 0


async def test_an_allow_listed_page_is_fetched_and_indexed_with_its_source(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(rate_limit_per_minute=0, kb_url_allowlist="127.0.0.1")
    app = await app_factory(settings, embedder=HashEmbedder())
    with serve() as server:
        server.route("GET", "/guides/boiler", lambda _: (200, PAGE, {}))
        async with client_for(app) as client:
            account = await register(client)
            url = f"{server.url}/guides/boiler"
            response = await client.post(
                "/api/v1/kb/documents/url",
                headers=account.headers,
                json={"url": url, "tags": ["plant"]},
            )
            assert response.status_code == 202, response.text
            doc = await wait_done(client, account.headers, response.json()["id"])
            assert (doc["status"], doc["kind"], doc["source_url"]) == ("ready", "html", url)
            assert doc["tags"] == ["plant"]
            search = await client.post(
                "/api/v1/kb/search", headers=account.headers, json={"query": "boiler pressure"}
            )
            assert "three bar" in search.json()["results"][0]["text"]
        assert server.requests[0].headers["host"] == server.url.removeprefix("http://")


async def test_a_redirect_to_a_private_address_is_refused(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(rate_limit_per_minute=0, kb_url_allowlist="127.0.0.1")
    with serve() as server:
        server.route("GET", "/go", lambda _: (302, b"", {"Location": "http://10.0.0.7/admin"}))
        status, body, _ = await _post(settings, app_factory, f"{server.url}/go")
    assert (status, body["error"]) == (422, "url_not_allowed")
    assert "10.0.0.7" in body["detail"]


async def test_oversize_and_slow_pages_are_cut_off(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory(
        rate_limit_per_minute=0,
        kb_url_allowlist="127.0.0.0/8",
        kb_max_upload_mb=1,
        kb_url_timeout_seconds=1.0,
    )

    def slow(_: object) -> tuple[int, bytes, dict[str, str]]:
        time.sleep(4)
        return 200, PAGE, {}

    with serve() as server:
        server.route("GET", "/big", lambda _: (200, b"a" * (2 * 1024 * 1024), {}))
        server.route("GET", "/slow", slow)
        status, body, _ = await _post(settings, app_factory, f"{server.url}/big")
        assert (status, body["error"]) == (413, "file_too_large")
        status, body, elapsed = await _post(settings, app_factory, f"{server.url}/slow")
        assert (status, body["error"]) == (422, "url_fetch_failed")
        assert "MAI_KB_URL_TIMEOUT_SECONDS" in body["detail"]
        # The page takes 4 s; the 1 s limit cuts it off well before.
        assert elapsed < 3.5
