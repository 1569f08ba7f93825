"""Which tools a turn may use: the run's registry, narrowed by the route."""

from __future__ import annotations

from functools import lru_cache

from graphs.assistant.context import Context
from graphs.assistant.state import Route
from graphs.tools import ToolConfig, ToolRegistry, ToolSpec, build_registry
from graphs.tools.memory import MEMORY_TOOLS

KNOWLEDGE_TOOL = "kb_search"


@lru_cache(maxsize=1)
def default_registry() -> ToolRegistry:
    """The built-in tools configured from the MAI_* variables (runs without the service)."""
    return build_registry(ToolConfig.from_env())


def registry_of(context: Context) -> ToolRegistry:
    """The run's tools: `context.tools`, else the built-ins."""
    return context.tools if context.tools is not None else default_registry()


def usable_tools(context: Context) -> list[ToolSpec]:
    """The run's enabled tools; without memory (MAI_MEMORY_ENABLED off) not remember/forget."""
    enabled = registry_of(context).enabled()
    if context.memory.enabled:
        return enabled
    return [spec for spec in enabled if spec.name not in MEMORY_TOOLS]


def offered_tools(context: Context, route: Route) -> list[ToolSpec]:
    """The tools bound to the model for this route ("direct": none)."""
    if route == "direct":
        return []
    enabled = usable_tools(context)
    if route == "knowledge":
        return [spec for spec in enabled if spec.name == KNOWLEDGE_TOOL]
    return enabled
