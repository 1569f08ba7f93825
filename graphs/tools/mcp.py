"""Tools of MCP servers: one supervised connection per server, its tools as `ToolSpec`s.

A connection lives in a task of its own (an MCP session must be opened and closed by the same
task): it connects, lists the server's tools, then pings the server until it fails, and
reconnects with backoff. While it is up its tools are offered as `<server>__<tool>`; a call
to a server that went away fails with a message the model can read, and asks the supervisor
to check the connection at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from graphs.tools.mcp_config import McpServerConfig
from graphs.tools.registry import ToolContext, ToolError, ToolSpec

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool
    from langchain_mcp_adapters.sessions import Connection
    from mcp import ClientSession

ServerStatus = Literal["connecting", "up", "down"]


def json_args_model(name: str, schema: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model that validates arguments against a JSON schema and keeps them all."""
    from jsonschema.validators import validator_for

    checked = dict(schema) if schema else {"type": "object"}
    validator = validator_for(checked)(checked)

    class Arguments(BaseModel):
        model_config = ConfigDict(extra="allow")

        @model_validator(mode="before")
        @classmethod
        def _matches_schema(cls, data: Any) -> Any:
            problems = [
                f"{'.'.join(str(p) for p in error.absolute_path) or 'arguments'}: {error.message}"
                for error in validator.iter_errors(data)
            ]
            if problems:
                raise ValueError("; ".join(problems[:5]))
            return data

    Arguments.__name__ = Arguments.__qualname__ = f"{name}_arguments"
    return Arguments


def content_text(content: Any) -> str:
    """An MCP tool result (LangChain content blocks) as text for the model."""
    if isinstance(content, str):
        return content
    if not isinstance(content, Sequence):
        return str(content)
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping):
            kind = block.get("type")
            if kind == "text":
                parts.append(str(block.get("text", "")))
            else:
                where = block.get("url") or block.get("mime_type") or ""
                parts.append(f"[{kind} content{': ' + str(where) if where else ''}]")
        else:
            parts.append(str(block))
    return "\n".join(parts)


def truncated(text: str, limit: int) -> str:
    """At most `limit` characters, led by a note saying how much the tool returned (first, so
    the note survives any later cut)."""
    if len(text) <= limit:
        return text
    return (
        f"[Truncated by MAI: the tool returned {len(text):,} characters; the first "
        f"{limit:,} follow.]\n" + text[:limit]
    )


def describe(error: BaseException) -> str:
    """One line for a connection failure (the first error of an exception group)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


class McpServer:
    """One configured MCP server: its supervised connection and the tools it offers."""

    def __init__(
        self,
        config: McpServerConfig,
        *,
        retry_seconds: float = 5.0,
        max_retry_seconds: float = 60.0,
        ping_seconds: float = 15.0,
    ) -> None:
        self.config = config
        self.name = config.name
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.ping_seconds = ping_seconds
        self.status: ServerStatus = "connecting"
        self.error: str | None = None
        self.since = time.time()
        # The last tools listed (kept while the server is down, so they can still be named).
        self.known: list[ToolSpec] = []
        # Tools whose registry names collided (after replacing characters): skipped.
        self.collisions: list[str] = []
        self._tools: dict[str, BaseTool] = {}
        self._check_now = asyncio.Event()
        self._attempted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Calls waiting for an answer: a big result can hold up a ping behind it, so periodic
        # pings wait while calls run (a call that fails asks for a check itself).
        self._in_flight = 0
        # Set when the current connection is lost: calls waiting on it stop at once.
        self._lost = asyncio.Event()

    # Lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the supervising task (connects in the background)."""
        self._task = asyncio.create_task(self._supervise(), name=f"mcp:{self.name}")

    async def first_attempt(self, timeout: float) -> None:
        """Wait until the first connection attempt ended (up or down), at most `timeout`."""
        try:
            await asyncio.wait_for(self._attempted.wait(), timeout)
        except TimeoutError:
            self.error = self.error or f"no answer within {timeout:g}s"

    async def stop(self) -> None:
        """Close the connection (and a stdio server's process)."""
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        # A server that ignores its closed stdin is killed by the SDK after a grace period;
        # shutdown does not wait longer than that for it.
        await asyncio.wait({task}, timeout=10)

    def _connection(self) -> Connection:
        config = self.config
        if config.transport == "stdio":
            assert config.command is not None
            return {
                "transport": "stdio",
                "command": config.command,
                "args": list(config.args),
                "env": config.resolved_env(),
                "cwd": config.cwd,
            }
        assert config.url is not None
        if config.transport == "sse":
            return {
                "transport": "sse",
                "url": config.url,
                "headers": config.resolved_headers(),
                "timeout": config.connect_timeout_seconds,
                "sse_read_timeout": config.timeout_seconds + 30,
            }
        return {
            "transport": "streamable_http",
            "url": config.url,
            "headers": config.resolved_headers(),
            "timeout": timedelta(seconds=config.connect_timeout_seconds),
            "sse_read_timeout": timedelta(seconds=config.timeout_seconds + 30),
        }

    def _set(self, status: ServerStatus, error: str | None) -> None:
        if status != self.status:
            self.since = time.time()
        self.status = status
        self.error = error

    async def _supervise(self) -> None:
        from langchain_mcp_adapters.sessions import create_session

        delay = self.retry_seconds
        while True:
            self._check_now.clear()
            error: str | None = None
            try:
                async with create_session(self._connection()) as session:
                    async with asyncio.timeout(self.config.connect_timeout_seconds):
                        await session.initialize()
                        await self._list(session)
                    self._lost = asyncio.Event()
                    self._set("up", None)
                    self._attempted.set()
                    delay = self.retry_seconds
                    try:
                        await self._watch(session)
                    finally:
                        # Before the session closes (a stdio server gets seconds to exit).
                        self._lost.set()
            except asyncio.CancelledError:
                self._set("down", "stopped")
                raise
            except Exception as failure:
                error = describe(failure)
            self._tools = {}
            self._lost.set()
            self._set("down", error or "the connection closed")
            self._attempted.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check_now.wait(), delay)
            delay = min(delay * 2, self.max_retry_seconds)

    async def _watch(self, session: ClientSession) -> None:
        """Return when the server stops answering pings (or a call found it gone)."""
        while True:
            asked = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check_now.wait(), self.ping_seconds)
                self._check_now.clear()
                asked = True
            # A big result can hold up the ping's answer behind it: while calls run, the ping
            # gets as long as a call has (a refused connection still fails it at once).
            limit = self.config.connect_timeout_seconds
            if self._in_flight and not asked:
                limit = max(limit, self.config.timeout_seconds)
            async with asyncio.timeout(limit):
                await session.send_ping()

    async def _list(self, session: ClientSession) -> None:
        from langchain_mcp_adapters.tools import load_mcp_tools

        listed = await load_mcp_tools(session, server_name=self.name, handle_tool_errors=False)
        tools: dict[str, BaseTool] = {}
        specs: list[ToolSpec] = []
        collisions: list[str] = []
        for tool in listed:
            if not self.config.offers(tool.name):
                continue
            name = self.config.tool_name(tool.name)
            if name in tools:
                collisions.append(f"{tool.name} (also {name})")
                continue
            tools[name] = tool
            specs.append(self._spec(name, tool))
        self._tools = tools
        self.known = specs
        self.collisions = collisions

    def _spec(self, name: str, tool: BaseTool) -> ToolSpec:
        schema = tool.args_schema if isinstance(tool.args_schema, dict) else {"type": "object"}
        hints = tool.metadata or {}
        read_only = bool(hints.get("readOnlyHint"))
        server = self

        async def run(args: BaseModel, _context: ToolContext) -> str:
            return await server.call(name, args.model_dump())

        return ToolSpec(
            name=name,
            description=(tool.description or f"The {tool.name} tool of {self.name}.")[:1024],
            args_schema=json_args_model(name, schema),
            parameters=dict(schema),
            coroutine=run,
            category="mcp",
            source=f"mcp:{self.name}",
            timeout_seconds=self.config.timeout_seconds,
            requires_approval=self.config.approval_for(tool.name),
            # Unless the server says the tool only reads, a call may act: run it once per id.
            side_effects=not read_only,
        )

    # Use ----------------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """Whether the server is connected now."""
        return self.status == "up"

    def specs(self) -> list[ToolSpec]:
        """The tools to offer: the listed ones while the server is up, none otherwise."""
        return list(self.known) if self.up else []

    def check_now(self) -> None:
        """Ask the supervisor to check the connection (or to retry) without waiting."""
        self._check_now.set()

    async def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one tool; ToolError (read by the model) when the server fails or is down."""
        from langchain_core.tools import ToolException

        tool = self._tools.get(name)
        if not self.up or tool is None:
            raise ToolError(
                f"The MCP server {self.name!r} is unavailable ({self.error or 'not connected'}), "
                f"so {name} cannot run now. MAI reconnects to it in the background; answer "
                "without this tool or try again later."
            )
        self._in_flight += 1
        lost = self._lost
        running = asyncio.ensure_future(tool.ainvoke(arguments))
        gone = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait({running, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not running.done():
                raise ToolError(
                    f"The MCP server {self.name!r} went away while running {name} "
                    f"({self.error or 'the connection closed'}). MAI reconnects to it in the "
                    "background; answer without this tool or try again later."
                )
            content = running.result()
        except ToolError:
            raise
        except ToolException as error:
            raise ToolError(f"The tool {name} failed: {error}") from None
        except asyncio.CancelledError:
            # Stopped by its deadline: the server may have gone away without a word.
            self.check_now()
            raise
        except Exception as error:
            self.check_now()
            raise ToolError(
                f"The MCP server {self.name!r} failed while running {name}: "
                f"{describe(error)}. The server may be down; MAI reconnects to it in the "
                "background."
            ) from None
        finally:
            running.cancel()
            gone.cancel()
            self._in_flight -= 1
        return truncated(content_text(content), self.config.max_output_chars)
