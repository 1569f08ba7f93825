"""Every long-lived connection the service holds, opened in the lifespan and closed at shutdown."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import Clock, SystemClock
from app.core.config import Settings, StartupError
from app.core.db import (
    check_database,
    create_engine,
    create_sessionmaker,
    require_current_schema,
    upgrade_schema,
)
from app.core.errors import ServiceUnavailable
from app.core.filemodes import make_private_dir, secure_data_dir
from app.core.kv import CircuitBreaker, KeyValueStore, MemoryStore, RedisStore, create_redis
from app.core.logging import get_logger
from app.core.pricing import PriceTable, load_price_table
from app.core.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from app.core.runs import RunRegistry
from app.core.tracing import Tracing

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.store.base import BaseStore
    from qdrant_client import AsyncQdrantClient

    from app.core.graphs import GraphRegistry
    from app.core.llm import ChatModelProvider
    from app.core.notify import Broker
    from app.core.webhooks import WebhookSender
    from graphs.assistant import Retriever
    from graphs.tools import ToolRegistry
    from graphs.tools.mcp import McpServer

log = get_logger(__name__)


@dataclass
class Resources:
    """The service's connections and shared clients; one per app instance."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    store: KeyValueStore
    redis: Redis | None
    http: httpx.AsyncClient
    # The Qdrant server client; None: the knowledge base uses the embedded engine.
    qdrant: AsyncQdrantClient | None
    rate_limiter: RateLimiter
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    ready: bool = False
    # USD per million tokens by model, from MAI_MODEL_PRICES_FILE; empty: all free.
    price_table: PriceTable = field(default_factory=PriceTable)
    # The agent, set up by app.services.agent_runtime.start_agent_runtime.
    checkpointer: BaseCheckpointSaver[Any] | None = None
    chat_models: ChatModelProvider | None = None
    tool_registry: ToolRegistry | None = None
    # The MCP servers of MAI_MCP_SERVERS_FILE (their tools join the registry while they are up)
    # and the tools or servers (`mcp:<name>`) an admin switched off.
    mcp_servers: list[McpServer] = field(default_factory=list)
    disabled_tools: frozenset[str] = frozenset()
    agent_graph: CompiledStateGraph[Any, Any, Any, Any] | None = None
    # Every graph listed in langgraph.json, compiled with the checkpointer (the run engine).
    graphs: GraphRegistry | None = None
    runs: RunRegistry = field(default_factory=RunRegistry)
    # The knowledge base behind the kb_search tool; None: the tool says it is unavailable.
    retriever: Retriever | None = None
    # Approvals: live notifications (Redis-shared when configured) and the webhook.
    approval_events: Broker | None = None
    approval_webhook: WebhookSender | None = None
    # Long-term memory: the LangGraph store compiled into the graphs (None: memory unavailable).
    memory_store: BaseStore | None = None
    # Tracing of agent runs: Langfuse when LANGFUSE_PUBLIC_KEY is set, else a no-op.
    tracing: Tracing = field(default_factory=Tracing)


class DataDirLocked(StartupError):
    """Another process holds the embedded stores of the data dir."""

    label = "data dir error"


def create_qdrant(settings: Settings) -> AsyncQdrantClient | None:
    """A client for the Qdrant server at MAI_QDRANT_URL; None selects the embedded engine."""
    if not settings.qdrant_url:
        return None
    from qdrant_client import AsyncQdrantClient

    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    # The version check would warn on every start while Qdrant is down; health reports it.
    return AsyncQdrantClient(
        url=settings.qdrant_url, api_key=api_key, timeout=10, check_compatibility=False
    )


def lock_data_dir(settings: Settings, stack: AsyncExitStack) -> None:
    """Hold the data dir's embedded vector store for this process (released with `stack`).

    The embedded engine's files belong to one process; a second server on the same folder
    would corrupt them, so it stops at start with one line instead."""
    import fcntl
    import os

    path = settings.data_dir / "vectors.lock"
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        handle.close()
        raise DataDirLocked(
            f"the data dir {settings.data_dir.resolve()} is in use by another MAI process "
            "(its embedded vector store is locked): stop that process, give this one its own "
            "MAI_DATA_DIR, or set MAI_QDRANT_URL to a Qdrant server both can share"
        ) from error
    stack.callback(handle.close)


async def open_resources(settings: Settings, clock: Clock | None = None) -> Resources:
    """Connect to everything configured; migrate the embedded database when asked to."""
    make_private_dir(settings.data_dir)
    clock = clock or SystemClock()
    stack = AsyncExitStack()
    price_table = load_price_table(settings.model_prices_file)
    try:
        if not settings.qdrant_url:
            lock_data_dir(settings, stack)
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        await check_database(engine, settings)
        if settings.should_auto_migrate:
            await upgrade_schema(engine)
        else:
            await require_current_schema(engine)
        redis: Redis | None = None
        store: KeyValueStore
        rate_limiter: RateLimiter
        if settings.redis_url:
            redis = create_redis(settings.redis_url)
            breaker = CircuitBreaker()
            store = RedisStore(redis, settings.redis_prefix, breaker)
            rate_limiter = RedisRateLimiter(redis, settings.redis_prefix, clock, breaker)
        else:
            store = MemoryStore(clock)
            rate_limiter = MemoryRateLimiter(clock)
        stack.push_async_callback(store.close)
        http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        stack.push_async_callback(http.aclose)
        qdrant = create_qdrant(settings)
        if qdrant is not None:
            stack.push_async_callback(qdrant.close)
        # The embedded database, uploads and vectors are private files.
        secure_data_dir(settings)
    except BaseException:
        await stack.aclose()
        raise
    return Resources(
        settings=settings,
        clock=clock,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        store=store,
        redis=redis,
        http=http,
        qdrant=qdrant,
        rate_limiter=rate_limiter,
        price_table=price_table,
        exit_stack=stack,
    )


async def close_resources(resources: Resources) -> None:
    """Close everything opened by open_resources, last opened first."""
    resources.ready = False
    await resources.exit_stack.aclose()


def require_ready(resources: Resources | None) -> Resources:
    """The resources of a started app, or 503 while starting or stopping."""
    if resources is None or not resources.ready:
        raise ServiceUnavailable(
            "MAI is starting or stopping; retry in a moment.", code="not_ready"
        )
    return resources
