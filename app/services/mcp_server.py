"""MAI as an MCP server: each graph of MAI_MCP_GRAPHS is an MCP tool (`input`: the message,
optional `conversation_id`), and a call is one run on the run engine, with the caller's
budget, rate limit and approvals like any other run.

A run that pauses for a person's approval answers at once with its approval ids and status,
so an MCP client never blocks on a decision; the next call on the same conversation continues
once it is decided.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from app.core.errors import MAIError, NotFound
from app.core.logging import bind_context, get_logger
from app.core.resources import Resources
from app.models import MultitaskStrategy, RunStatus, User
from app.services.analytics import AnalyticsService
from app.services.openai_chat import sources_of
from app.services.runs import RunEngine, RunRequest, title_from

if TYPE_CHECKING:
    from mcp import types
    from mcp.server.lowlevel import Server
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

log = get_logger(__name__)

# The caller of the MCP request being handled (set by the /mcp endpoint once authenticated).
mcp_caller: contextvars.ContextVar[User | None] = contextvars.ContextVar("mcp_caller", default=None)

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "input": {"type": "string", "minLength": 1, "description": "Your message to the agent"},
        "conversation_id": {
            "type": "string",
            "description": "Continue this conversation (from an earlier answer); omit to start one",
        },
    },
    "required": ["input"],
    "additionalProperties": False,
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["completed", "awaiting_approval"]},
        "answer": {"type": "string"},
        "citations": {"type": "array", "items": {"type": "object"}},
        "approvals": {"type": "array", "items": {"type": "object"}},
        "conversation_id": {"type": "string"},
        "run_id": {"type": "string"},
    },
    "required": ["status", "answer", "conversation_id", "run_id"],
}


class AgentTools:
    """The graphs as MCP tools; stateless, one per call is fine."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.engine = RunEngine(resources)

    def graph_ids(self) -> list[str]:
        """The graphs offered (MAI_MCP_GRAPHS that this server runs)."""
        assert self.resources.graphs is not None, "the run engine is not started"
        served = set(self.resources.graphs.ids())
        return [graph_id for graph_id in self.resources.settings.mcp_graphs if graph_id in served]

    def tools(self) -> list[types.Tool]:
        """One MCP tool per offered graph."""
        from mcp import types

        return [
            types.Tool(
                name=graph_id,
                title=f"MAI {graph_id}",
                description=(
                    f"Ask MAI's {graph_id} agent. Pass `conversation_id` from an earlier "
                    "answer to continue that conversation. The answer lists its sources; a "
                    "run that needs a person's approval answers with its approval ids and "
                    "status `awaiting_approval` instead of waiting."
                ),
                inputSchema=INPUT_SCHEMA,
                outputSchema=OUTPUT_SCHEMA,
            )
            for graph_id in self.graph_ids()
        ]

    async def call(self, user: User, graph_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Run the graph on the message as `user` and wait for its answer (or its pause)."""
        if graph_id not in self.graph_ids():
            raise NotFound(f"No agent named {graph_id!r}.", code="graph_not_found")
        message = str(arguments["input"])
        thread_id = self._thread(arguments.get("conversation_id"))
        await AnalyticsService(self.resources).check_budget(user)
        async with self.resources.sessionmaker() as session:
            run = await self.engine.create(
                session,
                RunRequest(
                    user_id=user.id,
                    graph_id=graph_id,
                    thread_id=thread_id,
                    message=message,
                    input={"messages": [{"role": "user", "content": message}]},
                    multitask_strategy=MultitaskStrategy.reject,
                    title=title_from(message),
                    metadata={"source": "mcp"},
                ),
            )
            await session.commit()
        await self.engine.queued(run)
        bind_context(conversation_id=str(run.conversation_id), run_id=str(run.id))
        done = await self.engine.wait(run)
        if done.status not in (RunStatus.success.value, RunStatus.interrupted.value):
            raise self.engine.error_of(done)
        result = dict(done.result or {})
        awaiting = result.get("status") == "awaiting_approval"
        return {
            "status": "awaiting_approval" if awaiting else "completed",
            "answer": str(result.get("answer") or ""),
            "citations": list(result.get("citations") or []),
            "approvals": [
                {
                    "id": str(a.get("id")),
                    "tool": a.get("tool"),
                    "args": a.get("args") or {},
                    "status": a.get("status") or "pending",
                }
                for a in result.get("approvals") or []
            ],
            "conversation_id": str(run.conversation_id),
            "run_id": str(run.id),
        }

    @staticmethod
    def _thread(conversation_id: object) -> uuid.UUID | None:
        if conversation_id is None or conversation_id == "":
            return None
        try:
            return uuid.UUID(str(conversation_id))
        except ValueError:
            raise NotFound(
                f"No conversation with id {conversation_id}.", code="conversation_not_found"
            ) from None


def answer_text(result: dict[str, Any], base_url: str) -> str:
    """What an MCP client shows: the answer with its sources, or what awaits approval."""
    if result["status"] == "awaiting_approval":
        lines = [
            "This run is waiting for a person's approval before it goes on "
            f"(conversation {result['conversation_id']}):"
        ]
        for approval in result["approvals"]:
            args = json.dumps(approval["args"], ensure_ascii=False, sort_keys=True)
            url = f"{base_url}/api/v1/approvals/{approval['id']}"
            lines.append(
                f"- approval {approval['id']} ({approval['status']}): {approval['tool']} {args}; "
                f"decide with POST {url}/approve or {url}/reject"
            )
        return "\n".join(lines)
    citations: Sequence[dict[str, Any]] = result["citations"]
    return str(result["answer"]) + sources_of(citations)


def build_server(resources: Resources) -> Server[Any, Any]:
    """The MCP server (low-level SDK server) offering the graphs as tools."""
    from mcp import types
    from mcp.server.lowlevel import Server

    server: Server[Any, Any] = Server("mai", instructions="MAI's agents, one tool each.")

    @server.list_tools()  # type: ignore[no-untyped-call,untyped-decorator]
    async def list_tools() -> list[types.Tool]:
        return AgentTools(resources).tools()

    @server.call_tool()  # type: ignore[untyped-decorator]
    async def call_tool(name: str, arguments: dict[str, Any]) -> Any:
        user = mcp_caller.get()
        if user is None:
            raise RuntimeError("not authenticated")
        try:
            result = await AgentTools(resources).call(user, name, arguments)
        except MAIError as error:
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=f"{error.code}: {error.detail}")],
                isError=True,
            )
        request = server.request_context.request
        base_url = resources.settings.openai_public_url or str(getattr(request, "base_url", ""))
        base_url = base_url.rstrip("/")
        text = answer_text(result, base_url)
        return [types.TextContent(type="text", text=text)], result

    return server


class McpServerHost:
    """The streamable HTTP session manager for /mcp, started at the first MCP request.

    Stateless and JSON-answering: every request stands alone, so any worker process can take
    it, and a tool call's answer is one JSON response. The MCP SDK is imported and its session
    manager started only when a client first calls, so a server nobody reaches over MCP starts
    without it; the manager runs in a task of its own (its task group must be entered and left
    in one task) until `stack` closes.
    """

    def __init__(self, resources: Resources, stack: AsyncExitStack) -> None:
        self.resources = resources
        self.stack = stack
        self._manager: StreamableHTTPSessionManager | None = None
        self._lock = asyncio.Lock()

    async def manager(self) -> StreamableHTTPSessionManager:
        """The running session manager, started on the first call."""
        if self._manager is not None:
            return self._manager
        async with self._lock:
            if self._manager is None:
                self._manager = await self._start()
        return self._manager

    async def _start(self) -> StreamableHTTPSessionManager:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        manager = StreamableHTTPSessionManager(
            app=build_server(self.resources), stateless=True, json_response=True
        )
        running, stop = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            async with manager.run():
                running.set()
                await stop.wait()

        task = asyncio.create_task(serve(), name="mcp-session-manager")
        waiting = asyncio.create_task(running.wait())
        await asyncio.wait({waiting, task}, return_when=asyncio.FIRST_COMPLETED)
        if not running.is_set():
            waiting.cancel()
            await task  # raises what stopped the manager from starting

        async def shut() -> None:
            stop.set()
            await task

        self.stack.push_async_callback(shut)
        return manager
