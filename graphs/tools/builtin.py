"""The built-in tool set and `build_registry`."""

from __future__ import annotations

from graphs.tools.calculator import calculator_tool
from graphs.tools.clock import current_time_tool
from graphs.tools.config import ToolConfig
from graphs.tools.http_api import http_api_tool
from graphs.tools.kb_search import kb_search_tool
from graphs.tools.memory import forget_tool, remember_tool
from graphs.tools.registry import ToolRegistry
from graphs.tools.web_search import web_search_tool


def build_registry(config: ToolConfig | None = None) -> ToolRegistry:
    """All built-in tools: calculator, current_time, web_search, http_api, kb_search, remember
    and forget.

    web_search and http_api are registered but disabled unless `config` configures them; a
    configured but unreadable API file raises ToolConfigError naming the problem.
    """
    config = config or ToolConfig()
    return ToolRegistry(
        [
            calculator_tool(),
            current_time_tool(),
            web_search_tool(config),
            http_api_tool(config),
            kb_search_tool(),
            remember_tool(),
            forget_tool(),
        ]
    )
