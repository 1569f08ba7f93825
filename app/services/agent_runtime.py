"""The agent's long-lived parts, set up in the lifespan: checkpointer, models, tools, graphs,
the run event log and this process's run worker."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from app.core.checkpoint import open_checkpointer
from app.core.graphs import GraphRegistry
from app.core.kv import CircuitBreaker
from app.core.llm import ChatModelProvider
from app.core.logging import get_logger
from app.core.resources import Resources
from app.core.run_events import RedisRunEventLog
from app.services.runs import RunWorker
from graphs.tools import ToolConfig, ToolRegistry, build_registry

log = get_logger(__name__)

# The graph MAI's own agent API runs.
DEFAULT_GRAPH = "assistant"


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


async def start_agent_runtime(
    resources: Resources, chat_model: BaseChatModel | None = None
) -> None:
    """Open the checkpointer, load the graphs of langgraph.json with it, and start this
    process's run worker (unless MAI_RUN_WORKERS_ENABLED is off: an API-only process).

    Cleanup goes on `resources.exit_stack`: at shutdown running runs get
    MAI_AGENT_SHUTDOWN_GRACE_SECONDS to finish, then go back to the queue (resumed from their
    checkpoint by the next worker) before the checkpointer closes.
    """
    stack = resources.exit_stack
    settings = resources.settings
    resources.checkpointer = await open_checkpointer(settings, stack)
    resources.chat_models = ChatModelProvider(settings, resources.http, chat_model)
    resources.tool_registry = build_tool_registry(resources)
    # The default graph now; the others when first asked for (see GraphRegistry).
    eager = (DEFAULT_GRAPH,)
    if settings.graphs_file is not None:
        resources.graphs = GraphRegistry.load(
            resources.checkpointer,
            resources.memory_store,
            path=settings.graphs_file,
            eager=eager,
        )
    else:
        resources.graphs = GraphRegistry.load(
            resources.checkpointer, resources.memory_store, eager=eager
        )
    resources.agent_graph = resources.graphs.get(DEFAULT_GRAPH).graph
    if resources.redis is not None:
        resources.runs.events = RedisRunEventLog(
            resources.redis, settings.redis_prefix, CircuitBreaker()
        )
    if not settings.run_workers_enabled:
        return
    worker = RunWorker(resources)
    await worker.recover_embedded()
    worker.start()
    stack.push_async_callback(worker.stop)
