"""Tools an agent can call: specs, the registry, the runner, and the built-in tools.

`build_registry(ToolConfig(...))` gives the built-ins (calculator, current_time, web_search,
http_api, kb_search, remember, forget); `ToolRegistry.extended(spec)` adds your own
`ToolSpec`s.
"""

from graphs.tools.builtin import build_registry
from graphs.tools.config import WEB_SEARCH_PROVIDERS, ToolConfig, WebSearchProvider
from graphs.tools.ledger import LedgerEntry, ToolLedger
from graphs.tools.registry import (
    ToolConfigError,
    ToolContext,
    ToolError,
    ToolFunction,
    ToolRegistry,
    ToolRetry,
    ToolSpec,
    TransientToolError,
)
from graphs.tools.runner import ToolOutcome, ToolStatus, run_tool

__all__ = [
    "WEB_SEARCH_PROVIDERS",
    "LedgerEntry",
    "ToolConfig",
    "ToolConfigError",
    "ToolContext",
    "ToolError",
    "ToolFunction",
    "ToolLedger",
    "ToolOutcome",
    "ToolRegistry",
    "ToolRetry",
    "ToolSpec",
    "ToolStatus",
    "TransientToolError",
    "WebSearchProvider",
    "build_registry",
    "run_tool",
]
