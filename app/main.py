"""The FastAPI app factory and its lifespan: resources open at start, close at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.errors import install_error_handlers
from app.api.middleware import RequestContextMiddleware
from app.api.router import api_router
from app.api.routes import health
from app.core.clock import Clock
from app.core.config import Settings, load_settings
from app.core.logging import configure_logging, get_logger
from app.core.resources import close_resources, open_resources
from app.services.users import ensure_admin

log = get_logger(__name__)


def _version() -> str:
    try:
        return version("mai")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Build an app instance; nothing connects until its lifespan starts."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        resources = await open_resources(settings, clock)
        app.state.resources = resources
        try:
            async with resources.sessionmaker() as session:
                await ensure_admin(session, settings)
            resources.ready = True
            log.info(
                "mai_started",
                database="postgresql" if settings.uses_postgres else "sqlite",
                redis=bool(settings.redis_url),
                qdrant="server" if settings.qdrant_url else "local",
                llm=settings.llm_base_url,
            )
            yield
        finally:
            await close_resources(resources)
            log.info("mai_stopped")

    app = FastAPI(
        title="MAI",
        summary="A production backend for LangGraph agents.",
        version=_version(),
        lifespan=lifespan,
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
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    app.include_router(api_router)
    return app
