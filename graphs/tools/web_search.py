"""The `web_search` tool: SearXNG (JSON API), Tavily or Brave, chosen by configuration.

Unconfigured (no provider, or a provider without its URL or API key) the tool is registered but
disabled, with the reason, so it is never offered to a model and never fails a run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, Field

from graphs.tools.config import ToolConfig
from graphs.tools.http import check_status, http_client, transport_failure
from graphs.tools.registry import ToolContext, ToolError, ToolRetry, ToolSpec

DEFAULT_URLS = {"tavily": "https://api.tavily.com", "brave": "https://api.search.brave.com"}
SNIPPET_CHARS = 500


class WebSearchArgs(BaseModel):
    """Arguments of the web_search tool."""

    query: str = Field(min_length=1, max_length=400, description="The web search query.")
    max_results: int = Field(default=5, ge=1, le=10, description="How many results (1-10).")


@dataclass(frozen=True)
class WebResult:
    """One search hit."""

    title: str
    url: str
    snippet: str


Search = Callable[[httpx.AsyncClient, str, int], Awaitable[list[WebResult]]]


def _results(items: Any, snippet_key: str) -> list[WebResult]:
    if not isinstance(items, list):
        raise ToolError("The search provider answered in an unexpected format.")
    found = []
    for item in items:
        if isinstance(item, dict) and item.get("url"):
            found.append(
                WebResult(
                    title=str(item.get("title") or item["url"]),
                    url=str(item["url"]),
                    snippet=" ".join(str(item.get(snippet_key) or "").split()),
                )
            )
    return found


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ToolError(f"{what} did not answer with JSON (is the JSON format enabled?).") from None
    if not isinstance(body, dict):
        raise ToolError(f"{what} answered in an unexpected format.")
    return body


def _searxng(base_url: str) -> Search:
    async def search(client: httpx.AsyncClient, query: str, limit: int) -> list[WebResult]:
        response = await client.get(
            f"{base_url}/search", params={"q": query, "format": "json", "safesearch": 1}
        )
        check_status("SearXNG", response)
        return _results(_json(response, "SearXNG").get("results"), "content")[:limit]

    return search


def _tavily(base_url: str, api_key: str) -> Search:
    async def search(client: httpx.AsyncClient, query: str, limit: int) -> list[WebResult]:
        response = await client.post(
            f"{base_url}/search",
            json={"query": query, "max_results": limit, "search_depth": "basic"},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        check_status("Tavily", response)
        return _results(_json(response, "Tavily").get("results"), "content")[:limit]

    return search


def _brave(base_url: str, api_key: str) -> Search:
    async def search(client: httpx.AsyncClient, query: str, limit: int) -> list[WebResult]:
        response = await client.get(
            f"{base_url}/res/v1/web/search",
            params={"q": query, "count": limit},
            headers={"X-Subscription-Token": api_key, "Accept": "application/json"},
        )
        check_status("Brave Search", response)
        web = _json(response, "Brave Search").get("web") or {}
        return _results(web.get("results", []), "description")[:limit]

    return search


def _provider(config: ToolConfig) -> tuple[Search | None, str]:
    """The configured search function, or None and why the tool is disabled."""
    provider = config.web_search_provider
    if provider is None:
        return None, "MAI_WEB_SEARCH_PROVIDER is not set"
    url = (config.web_search_url or DEFAULT_URLS.get(provider, "")).rstrip("/")
    if not url:
        return None, f"MAI_WEB_SEARCH_URL must point at the {provider} instance"
    if provider == "searxng":
        return _searxng(url), f"SearXNG at {url}"
    key = config.web_search_api_key
    if not key:
        return None, f"MAI_WEB_SEARCH_API_KEY is required for {provider}"
    if provider == "tavily":
        return _tavily(url, key), f"Tavily at {url}"
    return _brave(url, key), f"Brave Search at {url}"


def format_results(query: str, results: list[WebResult]) -> str:
    """Search results as numbered text for the model."""
    if not results:
        return f"The web search for {query!r} found nothing."
    lines = [f"Web results for {query!r}:"]
    for index, result in enumerate(results, start=1):
        snippet = result.snippet
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[:SNIPPET_CHARS].rstrip() + "…"
        lines.append(f"{index}. {result.title} <{result.url}>\n   {snippet}")
    return "\n".join(lines)


def web_search_tool(config: ToolConfig) -> ToolSpec:
    """The web_search tool spec, enabled only when a provider is fully configured."""
    search, where = _provider(config)

    async def run(args: Any, context: ToolContext) -> str:
        if search is None:
            raise ToolError(f"Web search is not configured: {where}.")
        async with http_client(config) as client:
            try:
                results = await search(client, args.query, args.max_results)
            except httpx.HTTPError as error:
                raise transport_failure("The web search provider", error) from error
        return format_results(args.query, results)

    return ToolSpec(
        name="web_search",
        description=(
            "Search the web for current information (news, prices, recent events, facts that "
            "may have changed). Returns titles, URLs and snippets."
        ),
        args_schema=WebSearchArgs,
        coroutine=run,
        category="web",
        enabled=search is not None,
        disabled_reason=None if search is not None else where,
        retry=ToolRetry(max_attempts=2, backoff_seconds=0.5),
    )
