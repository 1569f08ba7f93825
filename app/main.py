"""The FastAPI app factory and its lifespan: resources open at start, close at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from langchain_core.language_models import BaseChatModel

from app.api.console import install_console
from app.api.errors import install_error_handlers
from app.api.input_guard import NulCharacterGuard
from app.api.limits import RequestLimitMiddleware
from app.api.middleware import RequestContextMiddleware, SecurityHeadersMiddleware
from app.api.mounting import mount
from app.api.openapi import install_openapi
from app.api.router import API_ROUTERS
from app.api.routes import health
from app.api.routes import langgraph as langgraph_routes
from app.api.routes import langgraph_store as langgraph_store_routes
from app.api.routes import mcp as mcp_routes
from app.api.routes import metrics as metrics_routes
from app.api.routes import openai as openai_routes
from app.core.clock import Clock
from app.core.config import Environment, Settings, load_settings
from app.core.logging import configure_logging, get_logger
from app.core.metrics import mark_process_exited, track_db_pool
from app.core.resources import close_resources, open_resources
from app.core.run_metrics import record_run_outcome
from app.core.tracing import start_tracing
from app.services.agent_runtime import start_agent_runtime
from app.services.analytics import install_usage_recording
from app.services.approvals import start_approvals
from app.services.kb.embeddings import Embedder
from app.services.kb.rerank import LlmReranker
from app.services.kb.retriever import KnowledgeBaseRetriever
from app.services.kb.service import open_knowledge_base
from app.services.langgraph_webhooks import start_run_webhooks
from app.services.mcp_server import McpServerHost
from app.services.memory import open_memory_store_for
from app.services.retention import start_retention
from app.services.tools import start_tools
from app.services.users import ensure_admin

log = get_logger(__name__)


def _version() -> str:
    try:
        return version("mai")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    embedder: Embedder | None = None,
    chat_model: BaseChatModel | None = None,
) -> FastAPI:
    """Build an app instance; nothing connects until its lifespan starts.

    `embedder` replaces the configured embedding model (tests use a deterministic one);
    `chat_model` replaces the ChatOpenAI the agent uses (tests pass the scripted fake).
    """
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        resources = await open_resources(settings, clock)
        app.state.resources = resources
        track_db_pool(resources.engine)
        install_usage_recording(resources)
        # Tracing (Langfuse, when configured) and the run metrics hook.
        resources.tracing = start_tracing(settings, resources.exit_stack)
        resources.runs.hooks.append(record_run_outcome)
        try:
            async with resources.sessionmaker() as session:
                await ensure_admin(session, settings)
            # The knowledge base: a dimension mismatch with the Qdrant collection stops the start.
            knowledge_base = await open_knowledge_base(resources, embedder)
            app.state.kb = knowledge_base
            resources.retriever = KnowledgeBaseRetriever(knowledge_base)
            # Long-term memory: the store the graphs compile with, on the KB's embedding model.
            resources.memory_store = await open_memory_store_for(resources, knowledge_base)
            # The agent: checkpointer, shared chat model, tools, compiled graph, crash recovery.
            await start_agent_runtime(resources, chat_model)
            if settings.kb_rerank == "llm" and resources.chat_models is not None:
                knowledge_base.reranker = LlmReranker(resources.chat_models.model)
            # Approvals: send_email, notifications, webhook, the expiry sweeper.
            await start_approvals(resources)
            start_run_webhooks(resources)
            # Tools: the admins' switches and the MCP servers' connections (retried while down).
            await start_tools(resources)
            # MAI as an MCP server at /mcp: the SDK's session manager starts at the first call.
            app.state.mcp = McpServerHost(resources, resources.exit_stack)
            # Retention: the background sweeper of old checkpoints, idle threads, old tokens.
            start_retention(resources)
            resources.ready = True
            log.info(
                "mai_started",
                database="postgresql" if settings.uses_postgres else "sqlite",
                redis=bool(settings.redis_url),
                qdrant="server" if settings.qdrant_url else "embedded",
                llm=settings.llm_base_url,
            )
            yield
        finally:
            await close_resources(resources)
            mark_process_exited()
            log.info("mai_stopped")

    app = FastAPI(
        title="MAI",
        summary="A production backend for LangGraph agents.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID"],
        )
    # Inside the request context (added later = outer), so its errors carry the request id.
    app.add_middleware(NulCharacterGuard)
    # Security hardening: limits run before any route or auth (added later = outer), X-Forwarded-For
    # only from MAI_TRUSTED_PROXIES, security headers on every answer.
    app.add_middleware(
        RequestLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.kb_max_upload_mb * 1024 * 1024,
        max_json_depth=settings.max_json_depth,
        read_timeout_seconds=settings.request_read_timeout_seconds,
    )
    if settings.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.env is Environment.production)
    app.add_middleware(RequestContextMiddleware)
    # Outermost: compresses what every inner layer produced. Bodies under 1 KB are not worth
    # it; text/event-stream is excluded by Starlette, so SSE still streams event by event.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    mount(
        app,
        health.router,
        *API_ROUTERS,
        # The OpenAI-compatible API sits at /v1, where OpenAI clients look for it.
        openai_routes.router,
        # The LangGraph Server API at the root, where its clients look for it.
        langgraph_routes.public_router,
        langgraph_routes.router,
        langgraph_store_routes.router,
    )
    mcp_routes.install(app)
    if settings.metrics_enabled:
        metrics_routes.install(app)
    install_openapi(app)
    install_console(app)
    return app
