"""The console and the API docs as plain HTTP: what is served, from where, with which policy.

No browser and no started app are needed (these pages use no resources); the browser suite
in test_console.py covers how they behave.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app that was built but not started."""
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_the_console_page_loads_only_its_own_files(http: httpx.AsyncClient) -> None:
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    sources = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert sources, page.text
    for source in sources:
        assert source.startswith("/"), f"{source} is not served by MAI"
        if source.startswith("/static/"):
            assert (await http.get(source)).status_code == 200, source
    module = await http.get("/static/console/app.js")
    assert module.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert (await http.get("/console", follow_redirects=False)).headers["location"] == "/"


@pytest.mark.parametrize(
    ("path", "asset"),
    [
        ("/docs", "/static/vendor/swagger-ui/swagger-ui-bundle.js"),
        ("/docs", "/static/vendor/swagger-ui/swagger-ui.css"),
        ("/redoc", "/static/vendor/redoc/redoc.standalone.js"),
    ],
)
async def test_api_docs_use_vendored_assets(http: httpx.AsyncClient, path: str, asset: str) -> None:
    page = await http.get(path)
    assert page.status_code == 200
    assert asset in page.text
    for cdn in ("cdn.jsdelivr.net", "fonts.googleapis.com", "fastapi.tiangolo.com"):
        assert cdn not in page.text, f"{path} still loads from {cdn}"
    assert "img-src 'self' data:" in page.headers["content-security-policy"]
    served = await http.get(asset)
    assert served.status_code == 200
    assert len(served.content) > 10_000


async def test_vendored_assets_ship_with_their_licenses() -> None:
    static = Path(__file__).resolve().parents[2] / "app" / "static" / "vendor"
    for name in ("swagger-ui", "redoc"):
        assert (static / name / "LICENSE").is_file(), name
    assert "swagger-ui-dist" in (static / "VENDOR.md").read_text()


async def test_console_pages_are_not_api_operations(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    assert not {"/", "/console", "/docs", "/redoc"} & set(schema["paths"])
