"""The agent's long-lived parts, set up in the lifespan: checkpointer, model, tools, graph."""

from __future__ import annotations

import asyncio
import contextlib

from langchain_core.language_models import BaseChatModel

from app.core.checkpoint import open_checkpointer
from app.core.llm import ChatModelProvider
from app.core.logging import get_logger
from app.core.resources import Resources
from app.services.agent import recover_abandoned_runs
from graphs.assistant import builder
from graphs.tools import ToolConfig, ToolRegistry, build_registry

log = get_logger(__name__)


def build_tool_registry(resources: Resources) -> ToolRegistry:
    """The built-in tools configured from Settings (web search and HTTP APIs when set)."""
    settings = resources.settings
    api_key = settings.web_search_api_key
    return build_registry(
        ToolConfig(
            web_search_provider=settings.web_search_provider,
            web_search_url=settings.web_search_url,
            web_search_api_key=api_key.get_secret_value() if api_key is not None else None,
            api_tools_file=settings.api_tools_file,
            tool_timeout_seconds=settings.tool_timeout_seconds,
            http=resources.http,
        )
    )


async def _sweep_abandoned_runs(resources: Resources) -> None:
    """Every stale interval, unlock conversations whose turn's process died."""
    interval = resources.settings.agent_run_stale_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await recover_abandoned_runs(resources)
        except Exception:
            log.exception("agent_run_sweep_failed")


async def start_agent_runtime(
    resources: Resources, chat_model: BaseChatModel | None = None
) -> None:
    """Open the checkpointer, compile the graph with it, recover runs a crash left behind.

    Cleanup goes on `resources.exit_stack`: at shutdown running turns get
    MAI_AGENT_SHUTDOWN_GRACE_SECONDS to finish (then are recorded interrupted) before the
    checkpointer closes.
    """
    stack = resources.exit_stack
    resources.checkpointer = await open_checkpointer(resources.settings, stack)
    resources.chat_models = ChatModelProvider(resources.settings, resources.http, chat_model)
    resources.tool_registry = build_tool_registry(resources)
    resources.agent_graph = builder.compile(
        checkpointer=resources.checkpointer, store=resources.memory_store
    )
    await recover_abandoned_runs(resources)
    sweeper = asyncio.create_task(_sweep_abandoned_runs(resources), name="agent-run-sweeper")

    async def _stop() -> None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await resources.runs.shutdown(resources.settings.agent_shutdown_grace_seconds)

    stack.push_async_callback(_stop)
