"""Tool configuration: which optional tools are on, where they point, and their HTTP client."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from graphs.tools.registry import ToolConfigError

WebSearchProvider = Literal["searxng", "tavily", "brave"]
WEB_SEARCH_PROVIDERS: tuple[WebSearchProvider, ...] = ("searxng", "tavily", "brave")


@dataclass(frozen=True, kw_only=True)
class ToolConfig:
    """Settings for the built-in tools; the defaults turn web_search and http_api off.

    `http` is the shared client the HTTP tools use (the service passes its own); without one each
    call opens a short-lived client.
    """

    web_search_provider: WebSearchProvider | None = None
    web_search_url: str | None = None
    web_search_api_key: str | None = None
    api_tools_file: Path | str | None = None
    tool_timeout_seconds: float = 30.0
    http: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        provider = self.web_search_provider
        if provider is not None and provider not in WEB_SEARCH_PROVIDERS:
            raise ToolConfigError(
                f"MAI_WEB_SEARCH_PROVIDER: unknown provider {provider!r}; "
                f"use one of {', '.join(WEB_SEARCH_PROVIDERS)}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ToolConfig:
        """Read the MAI_* tool variables (for runs without the service, e.g. LangGraph Studio)."""
        env = os.environ if environ is None else environ
        provider = (env.get("MAI_WEB_SEARCH_PROVIDER") or "").strip().lower() or None
        if provider is not None and provider not in WEB_SEARCH_PROVIDERS:
            raise ToolConfigError(
                f"MAI_WEB_SEARCH_PROVIDER: unknown provider {provider!r}; "
                f"use one of {', '.join(WEB_SEARCH_PROVIDERS)}"
            )
        timeout = env.get("MAI_TOOL_TIMEOUT_SECONDS") or "30"
        try:
            seconds = float(timeout)
        except ValueError:
            raise ToolConfigError(f"MAI_TOOL_TIMEOUT_SECONDS: not a number: {timeout!r}") from None
        return cls(
            web_search_provider=provider,
            web_search_url=env.get("MAI_WEB_SEARCH_URL") or None,
            web_search_api_key=env.get("MAI_WEB_SEARCH_API_KEY") or None,
            api_tools_file=env.get("MAI_API_TOOLS_FILE") or None,
            tool_timeout_seconds=seconds,
        )
