"""Tool definitions and the registry: what a tool is, and the set of tools a graph may offer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from langgraph.store.base import BaseStore
from pydantic import BaseModel

from graphs.knowledge import PassageBook, Retriever
from graphs.memory import MemoryOptions


class ToolError(Exception):
    """An expected tool failure; its message is what the model reads as the tool result."""


class TransientToolError(ToolError):
    """A failure worth retrying under the tool's retry policy (peer down, HTTP 429 or 5xx)."""


class ToolConfigError(Exception):
    """Tool configuration that cannot work (unreadable API file, unknown provider...)."""


@dataclass(kw_only=True)
class ToolContext:
    """What a tool may use while it runs: who is asking and the run's dependencies."""

    user_id: str = "anonymous"
    retriever: Retriever | None = None
    top_k: int = 5
    passages: PassageBook = field(default_factory=PassageBook)
    # Long-term memory (the graph's `Runtime.store`): None when the run has no store.
    store: BaseStore | None = None
    memory: MemoryOptions = field(default_factory=MemoryOptions)
    conversation_id: str | None = None
    clock: Callable[[], datetime] | None = None

    def now(self) -> datetime:
        """The current time by the run's clock (UTC)."""
        return self.clock() if self.clock is not None else datetime.now(UTC)


ToolFunction = Callable[[Any, ToolContext], Awaitable[str]]
"""A tool's implementation: (validated arguments model, context) -> text for the model."""


@dataclass(frozen=True, kw_only=True)
class ToolRetry:
    """How often a tool is tried: transient failures are retried with exponential backoff."""

    max_attempts: int = 1
    backoff_seconds: float = 0.5
    retry_on_timeout: bool = False

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_seconds < 0:
            raise ValueError("backoff_seconds must not be negative")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(self.backoff_seconds * 2 ** (attempt - 1))


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """One tool: its name, description, argument schema, policies and implementation."""

    name: str
    description: str
    args_schema: type[BaseModel]
    coroutine: ToolFunction
    category: str
    enabled: bool = True
    disabled_reason: str | None = None
    timeout_seconds: float | None = None
    retry: ToolRetry = field(default_factory=ToolRetry)
    requires_approval: bool = False
    # Acts on the world (sends, writes): runs at most once per tool call id (see ledger.py).
    side_effects: bool = False
    # The argument JSON schema as the tool's provider wrote it (MCP tools); None: the schema of
    # `args_schema`, which still validates the arguments either way.
    parameters: dict[str, Any] | None = None
    # Where the tool comes from: "builtin", or "mcp:<server>" for a tool of an MCP server.
    source: str = "builtin"

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the tool's arguments (what a model is shown)."""
        if self.parameters is not None:
            return self.parameters
        return self.args_schema.model_json_schema()

    def as_langchain_tool(self, context: ToolContext | None = None) -> BaseTool:
        """This tool as a LangChain tool (to bind to a model, or to run outside the graph)."""
        spec = self

        async def run(**arguments: Any) -> str:
            args = spec.args_schema.model_validate(arguments)
            return await spec.coroutine(args, context or ToolContext())

        return StructuredTool.from_function(
            coroutine=run,
            name=self.name,
            description=self.description,
            args_schema=self.parameters if self.parameters is not None else self.args_schema,
            metadata={"category": self.category, "requires_approval": self.requires_approval},
        )


class ToolRegistry:
    """The tools known to a deployment, by name; disabled ones are kept but never offered."""

    def __init__(self, specs: Iterable[ToolSpec] = ()) -> None:
        self._specs: dict[str, ToolSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"two tools are named {spec.name!r}")
            self._specs[spec.name] = spec

    def get(self, name: str) -> ToolSpec | None:
        """The tool called `name` (enabled or not), or None."""
        return self._specs.get(name)

    def all(self) -> list[ToolSpec]:
        """Every registered tool, enabled or not."""
        return list(self._specs.values())

    def enabled(self) -> list[ToolSpec]:
        """The tools that may be offered to a model."""
        return [spec for spec in self._specs.values() if spec.enabled]

    def names(self) -> list[str]:
        """The names of the enabled tools."""
        return [spec.name for spec in self.enabled()]

    def as_langchain_tools(self, context: ToolContext | None = None) -> list[BaseTool]:
        """The enabled tools as LangChain tools."""
        return [spec.as_langchain_tool(context) for spec in self.enabled()]

    def extended(self, *specs: ToolSpec) -> ToolRegistry:
        """A copy with these tools added (a tool with the same name is replaced)."""
        merged = dict(self._specs)
        for spec in specs:
            merged[spec.name] = spec
        return ToolRegistry(merged.values())

    def without(self, *names: str) -> ToolRegistry:
        """A copy with these tools disabled (kept, so their names still explain themselves)."""
        return ToolRegistry(
            replace(spec, enabled=False, disabled_reason="disabled by configuration")
            if spec.name in names
            else spec
            for spec in self._specs.values()
        )

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs
