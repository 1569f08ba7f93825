"""The built-in tools, through their specs, against local HTTP servers."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphs.tools import (
    ToolConfig,
    ToolConfigError,
    ToolContext,
    ToolError,
    ToolRegistry,
    ToolSpec,
    build_registry,
    run_tool,
)
from graphs.tools.calculator import calculate
from tests.graphs.http_server import LocalServer, Request


async def call(registry: ToolRegistry, name: str, **args: Any) -> tuple[str, str]:
    """Run a tool through the runner: (status, content)."""
    spec = registry.get(name)
    assert spec is not None
    outcome = await run_tool(spec, args, ToolContext(), timeout=10)
    return outcome.status, outcome.content


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 2", "4"),
        ("0.1 + 0.2", "0.3"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-2 ** 2", "-4"),
        ("2 ** -1", "0.5"),
        ("(1 + 2) * 3 % 4", "1"),
        ("sqrt(16) + abs(-3)", "7"),
        ("round(pi, 3)", "3.142"),
        ("max(1, 5, 3)", "5"),
        ("factorial(20)", "2432902008176640000"),
        ("10 ** 300 // 10 ** 299", "10"),
        ("3 \u00d7 4", "12"),
    ],
)
def test_calculator_evaluates(expression: str, expected: str) -> None:
    assert calculate(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "Division by zero"),
        ("5 % 0", "Division by zero"),
        ("0 ** -1", "Division by zero"),
        ("2 ** 100000", "exponent is too large"),
        ("9 ** 9 ** 9", "exponent is too large"),
        ("(10 ** 600) * (10 ** 600)", "too large"),
        ("1e308 * 10", "too large"),
        ("factorial(10000)", "too large"),
        ("x + 1", "Unknown name 'x'"),
        ("__import__('os')", "Unknown function '__import__'"),
        ("(1).__class__", "Unsupported syntax"),
        ("'a' * 3", "Only numbers"),
        ("True + 1", "Only numbers"),
        ("2 ^ 3", "use ** for powers"),
        ("sqrt(-1)", "undefined for real numbers"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 +", "Could not parse"),
        ("[1, 2]", "Unsupported syntax"),
        ("1" * 600, "too long"),
        ("round(x=1)", "positional arguments only"),
    ],
)
def test_calculator_refuses_with_a_clear_error(expression: str, message: str) -> None:
    with pytest.raises(ToolError, match=re.escape(message)):
        calculate(expression)


async def test_calculator_through_the_runner_reports_errors() -> None:
    registry = build_registry()
    assert await call(registry, "calculator", expression="6*7") == ("ok", "42")
    status, content = await call(registry, "calculator", expression="1/0")
    assert status == "error"
    assert "Division by zero" in content
    status, content = await call(registry, "calculator")
    assert status == "error"
    assert content.startswith("Invalid arguments for calculator")


async def test_current_time_in_utc_and_a_time_zone() -> None:
    registry = build_registry()
    before = datetime.now(UTC).replace(microsecond=0)
    status, utc = await call(registry, "current_time")
    after = datetime.now(UTC)
    assert status == "ok"
    stamp = datetime.fromisoformat(utc.split(" ")[0])
    assert before <= stamp <= after
    assert stamp.utcoffset() is not None
    assert "in UTC, UTC+00:00" in utc
    status, tokyo = await call(registry, "current_time", timezone="Asia/Tokyo")
    assert status == "ok"
    assert "+09:00" in tokyo.split(" ")[0]
    assert "Asia/Tokyo" in tokyo
    status, bad = await call(registry, "current_time", timezone="Mars/Olympus")
    assert status == "error"
    assert "Unknown time zone 'Mars/Olympus'" in bad


def test_registry_defaults_and_metadata() -> None:
    registry = build_registry()
    assert [s.name for s in registry] == [
        "calculator",
        "current_time",
        "web_search",
        "http_api",
        "kb_search",
        "remember",
        "forget",
    ]
    assert registry.names() == ["calculator", "current_time", "kb_search", "remember", "forget"]
    web = registry.get("web_search")
    assert web is not None
    assert not web.enabled
    assert web.disabled_reason == "MAI_WEB_SEARCH_PROVIDER is not set"
    for spec in registry:
        assert spec.requires_approval is False
        assert spec.description
        assert spec.category
        assert spec.retry.max_attempts >= 1
    tools = registry.as_langchain_tools()
    assert [t.name for t in tools] == [
        "calculator",
        "current_time",
        "kb_search",
        "remember",
        "forget",
    ]
    assert "expression" in tools[0].args
    assert "calculator" not in registry.without("calculator").names()
    with pytest.raises(ValueError, match="two tools"):
        ToolRegistry([*registry.all(), registry.all()[0]])


async def test_langchain_tool_runs_the_spec() -> None:
    [calculator] = [t for t in build_registry().as_langchain_tools() if t.name == "calculator"]
    assert await calculator.ainvoke({"expression": "2**10"}) == "1024"


# --- web_search -------------------------------------------------------------------------------


def web(config: ToolConfig) -> ToolSpec:
    spec = build_registry(config).get("web_search")
    assert spec is not None
    return spec


async def search(spec: ToolSpec, **args: Any) -> tuple[str, str]:
    outcome = await run_tool(spec, args, ToolContext(), timeout=10)
    return outcome.status, outcome.content


async def test_web_search_with_searxng(http_server: LocalServer) -> None:
    http_server.json(
        "GET",
        "/search",
        {
            "results": [
                {
                    "title": "LangGraph",
                    "url": "https://example.org/lg",
                    "content": "Graphs  for\nagents",
                },
                {"title": "Other", "url": "https://example.org/o", "content": "more"},
                {"title": "No URL"},
            ]
        },
    )
    spec = web(ToolConfig(web_search_provider="searxng", web_search_url=http_server.url + "/"))
    assert spec.enabled
    status, content = await search(spec, query="langgraph", max_results=5)
    assert status == "ok"
    assert "1. LangGraph <https://example.org/lg>\n   Graphs for agents" in content
    assert "2. Other" in content
    assert "No URL" not in content
    [request] = http_server.requests
    assert request.query == {"q": ["langgraph"], "format": ["json"], "safesearch": ["1"]}


async def test_web_search_with_tavily(http_server: LocalServer) -> None:
    http_server.json(
        "POST",
        "/search",
        {"answer": None, "results": [{"title": "T", "url": "https://t.example", "content": "c"}]},
    )
    config = ToolConfig(
        web_search_provider="tavily", web_search_url=http_server.url, web_search_api_key="tvly-k"
    )
    status, content = await search(web(config), query="news", max_results=3)
    assert status == "ok"
    assert "1. T <https://t.example>" in content
    [request] = http_server.requests
    assert request.headers["authorization"] == "Bearer tvly-k"
    assert request.json() == {"query": "news", "max_results": 3, "search_depth": "basic"}


async def test_web_search_with_brave(http_server: LocalServer) -> None:
    http_server.json(
        "GET",
        "/res/v1/web/search",
        {"web": {"results": [{"title": "B", "url": "https://b.example", "description": "d"}]}},
    )
    config = ToolConfig(
        web_search_provider="brave", web_search_url=http_server.url, web_search_api_key="bk"
    )
    status, content = await search(web(config), query="brave", max_results=2)
    assert status == "ok"
    assert "1. B <https://b.example>\n   d" in content
    [request] = http_server.requests
    assert request.headers["x-subscription-token"] == "bk"
    assert request.query == {"q": ["brave"], "count": ["2"]}


async def test_web_search_disabled_when_unconfigured() -> None:
    assert not web(ToolConfig(web_search_provider="tavily")).enabled
    assert not web(ToolConfig(web_search_provider="searxng")).enabled
    spec = web(ToolConfig(web_search_provider="brave"))
    assert spec.disabled_reason == "MAI_WEB_SEARCH_API_KEY is required for brave"
    with pytest.raises(ToolConfigError, match="unknown provider 'bing'"):
        ToolConfig.from_env({"MAI_WEB_SEARCH_PROVIDER": "bing"})
    configured = ToolConfig.from_env(
        {"MAI_WEB_SEARCH_PROVIDER": "SearXNG", "MAI_WEB_SEARCH_URL": "http://127.0.0.1:9"}
    )
    assert web(configured).enabled


async def test_web_search_retries_a_failing_provider_then_reports(
    http_server: LocalServer,
) -> None:
    http_server.json("GET", "/search", {"error": "overloaded"}, status=503)
    spec = web(ToolConfig(web_search_provider="searxng", web_search_url=http_server.url))
    status, content = await search(spec, query="q")
    assert status == "error"
    assert "SearXNG answered HTTP 503" in content
    assert "after 2 attempts" in content
    assert len(http_server.requests) == 2


async def test_web_search_rejected_key_is_not_retried(http_server: LocalServer) -> None:
    http_server.json("POST", "/search", {"detail": "bad key"}, status=401)
    config = ToolConfig(
        web_search_provider="tavily", web_search_url=http_server.url, web_search_api_key="x"
    )
    status, content = await search(web(config), query="q")
    assert status == "error"
    assert "refused the credentials (HTTP 401)" in content
    assert len(http_server.requests) == 1


async def test_web_search_unreachable_provider_is_an_error() -> None:
    spec = web(ToolConfig(web_search_provider="searxng", web_search_url="http://127.0.0.1:9"))
    status, content = await search(spec, query="q")
    assert status == "error"
    assert "could not be reached" in content


async def test_web_search_uses_the_shared_client(http_server: LocalServer) -> None:
    http_server.json("GET", "/search", {"results": []})
    async with httpx.AsyncClient(headers={"X-Shared": "yes"}) as client:
        config = ToolConfig(
            web_search_provider="searxng", web_search_url=http_server.url, http=client
        )
        status, content = await search(web(config), query="nothing")
    assert status == "ok"
    assert "found nothing" in content
    assert http_server.requests[0].headers["x-shared"] == "yes"


# --- http_api ---------------------------------------------------------------------------------


def api_file(tmp_path: Path, server: LocalServer, extra: str = "") -> Path:
    path = tmp_path / "apis.yaml"
    path.write_text(
        f"""
apis:
  - name: inventory
    description: Stock levels by SKU
    base_url: {server.url}/api
    auth:
      header: Authorization
      env: MAI_TEST_INVENTORY_TOKEN
      prefix: "Bearer "
    allow:
      - methods: [get]
        paths: [/items, /items/*]
      - methods: [POST]
        paths: [/items/*/reservations]
{extra}
"""
    )
    return path


def http_api(path: Path) -> ToolSpec:
    spec = build_registry(ToolConfig(api_tools_file=path)).get("http_api")
    assert spec is not None
    return spec


async def api(spec: ToolSpec, **args: Any) -> tuple[str, str]:
    outcome = await run_tool(spec, args, ToolContext(), timeout=10)
    return outcome.status, outcome.content


async def test_http_api_calls_an_allowed_path_with_the_auth_header(
    http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAI_TEST_INVENTORY_TOKEN", "s3cret")
    http_server.json("GET", "/api/items/42", {"sku": 42, "stock": 7})

    def reserve(request: Request) -> tuple[int, Any, dict[str, str]]:
        return 201, {"reserved": request.json()["quantity"]}, {}

    http_server.route("POST", "/api/items/42/reservations", reserve)
    spec = http_api(api_file(tmp_path, http_server))
    assert spec.enabled
    assert "inventory: Stock levels by SKU" in spec.description
    assert "GET /items, /items/*" in spec.description
    status, content = await api(spec, api="inventory", path="/items/42", query={"full": True})
    assert status == "ok"
    assert content.startswith("HTTP 200 OK")
    assert '"stock": 7' in content
    first = http_server.requests[0]
    assert first.headers["authorization"] == "Bearer s3cret"
    assert first.query == {"full": ["true"]}
    status, content = await api(
        spec, api="inventory", method="post", path="items/42/reservations", body={"quantity": 2}
    )
    assert status == "ok"
    assert content.startswith("HTTP 201")
    assert '"reserved": 2' in content


async def test_http_api_refuses_undeclared_methods_and_paths(
    http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAI_TEST_INVENTORY_TOKEN", "s3cret")
    spec = http_api(api_file(tmp_path, http_server))
    refusals = [
        ({"method": "DELETE", "path": "/items/42"}, "Refused: DELETE /items/42", "method"),
        ({"path": "/admin/users"}, "Refused: GET /admin/users", "path"),
        ({"path": "/items/42/secret"}, "Refused: GET /items/42/secret", "path"),
        ({"method": "POST", "path": "/items"}, "Refused: POST /items", "method"),
    ]
    for args, message, what in refusals:
        status, content = await api(spec, api="inventory", **args)
        assert status == "error"
        assert content.startswith(message)
        assert f"this {what} is not declared" in content
        assert "Allowed: GET /items, /items/*; POST /items/*/reservations" in content
    for path, message in [
        ("/items/../admin", "'.' and '..' segments are refused"),
        ("/items/%2e%2e/admin", "'.' and '..' segments are refused"),
        ("/items?x=1", "Put query parameters in `query`"),
    ]:
        status, content = await api(spec, api="inventory", path=path)
        assert status == "error"
        assert message in content
    status, content = await api(spec, api="billing", path="/items")
    assert status == "error"
    assert "Unknown API 'billing'. Declared APIs: inventory." in content
    assert http_server.requests == []  # nothing refused reached the server


async def test_http_api_missing_credential_and_server_errors(
    http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAI_TEST_INVENTORY_TOKEN", raising=False)
    spec = http_api(api_file(tmp_path, http_server))
    status, content = await api(spec, api="inventory", path="/items")
    assert status == "error"
    assert "MAI_TEST_INVENTORY_TOKEN, which is not set" in content
    monkeypatch.setenv("MAI_TEST_INVENTORY_TOKEN", "t")
    http_server.json("GET", "/api/items", {"error": "down"}, status=502)
    status, content = await api(spec, api="inventory", path="/items")
    assert status == "error"
    assert "HTTP 502" in content
    assert len(http_server.requests) == 2  # GET is retried once
    http_server.json("GET", "/api/items/7", {"error": "no such item"}, status=404)
    status, content = await api(spec, api="inventory", path="/items/7")
    assert status == "error"
    assert "HTTP 404" in content
    assert "no such item" in content


async def test_http_api_is_off_without_a_file_and_rejects_a_bad_file(tmp_path: Path) -> None:
    spec = build_registry(ToolConfig()).get("http_api")
    assert spec is not None
    assert not spec.enabled
    bad = tmp_path / "bad.yaml"
    bad.write_text("apis:\n  - name: x\n    base_url: ftp://nope\n    allow: []\n")
    with pytest.raises(ToolConfigError, match=r"MAI_API_TOOLS_FILE: .*bad.yaml: apis.0"):
        build_registry(ToolConfig(api_tools_file=bad))
    with pytest.raises(ToolConfigError, match="does not exist"):
        build_registry(ToolConfig(api_tools_file=tmp_path / "missing.yaml"))


async def test_tools_of_one_call_run_in_parallel_in_the_runner() -> None:
    # Sanity check of the runner alone: cancellation propagates (a cancelled run stops tools).
    spec = build_registry().get("calculator")
    assert spec is not None
    task = asyncio.ensure_future(run_tool(spec, {"expression": "1+1"}, ToolContext(), timeout=5))
    assert (await task).content == "2"
