"""Every long-lived connection the service holds, opened in the lifespan and closed at shutdown."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import Clock, SystemClock
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, pending_migrations, upgrade_schema
from app.core.errors import ServiceUnavailable
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

    from app.core.llm import ChatModelProvider
    from app.core.notify import Broker
    from app.core.webhooks import WebhookSender
    from graphs.assistant import Retriever
    from graphs.tools import ToolRegistry

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
    qdrant: AsyncQdrantClient
    rate_limiter: RateLimiter
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    ready: bool = False
    # USD per million tokens by model (issue 6), from MAI_MODEL_PRICES_FILE; empty: all free.
    price_table: PriceTable = field(default_factory=PriceTable)
    # The agent (issue 3), set up by app.services.agent_runtime.start_agent_runtime.
    checkpointer: BaseCheckpointSaver[Any] | None = None
    chat_models: ChatModelProvider | None = None
    tool_registry: ToolRegistry | None = None
    agent_graph: CompiledStateGraph[Any, Any, Any, Any] | None = None
    runs: RunRegistry = field(default_factory=RunRegistry)
    # The knowledge base behind the kb_search tool (issue 5); None: the tool says it is unavailable.
    retriever: Retriever | None = None
    # Approvals (issue 4): live notifications (Redis-shared when configured) and the webhook.
    approval_events: Broker | None = None
    approval_webhook: WebhookSender | None = None
    # Long-term memory: the LangGraph store compiled into the graphs (None: memory unavailable).
    memory_store: BaseStore | None = None
    # Tracing of agent runs (issue 7): Langfuse when LANGFUSE_PUBLIC_KEY is set, else a no-op.
    tracing: Tracing = field(default_factory=Tracing)


class SchemaOutOfDate(RuntimeError):
    """The database has not been migrated to this version of MAI."""


def create_qdrant(settings: Settings) -> AsyncQdrantClient:
    """A Qdrant client: the server at MAI_QDRANT_URL, or local mode on disk in the data dir."""
    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        # The version check would warn on every start while Qdrant is down; health reports it.
        return AsyncQdrantClient(
            url=settings.qdrant_url, api_key=api_key, timeout=10, check_compatibility=False
        )
    settings.qdrant_path.mkdir(parents=True, exist_ok=True)
    return AsyncQdrantClient(path=str(settings.qdrant_path))


async def open_resources(settings: Settings, clock: Clock | None = None) -> Resources:
    """Connect to everything configured; migrate the embedded database when asked to."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = clock or SystemClock()
    stack = AsyncExitStack()
    price_table = load_price_table(settings.model_prices_file)
    try:
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        if settings.should_auto_migrate:
            await upgrade_schema(engine)
        else:
            missing = await pending_migrations(engine)
            if missing:
                raise SchemaOutOfDate(
                    "the database schema is behind this version of MAI "
                    f"(missing {', '.join(sorted(missing))}): run `mai migrate`"
                )
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
        stack.push_async_callback(qdrant.close)
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
