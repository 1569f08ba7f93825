"""Health of each component MAI depends on, checked concurrently with a timeout each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from app.core.db import ping
from app.core.resources import Resources

ComponentStatus = Literal["healthy", "unhealthy"]
OverallStatus = Literal["healthy", "degraded", "unhealthy"]


@dataclass(slots=True)
class ComponentHealth:
    """One component's check."""

    name: str
    status: ComponentStatus
    required: bool
    latency_ms: float
    backend: str
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class HealthReport:
    """The service's overall status and its components."""

    status: OverallStatus
    components: list[ComponentHealth]


async def _timed(
    name: str,
    backend: str,
    required: bool,
    timeout: float,
    check: Callable[[], Awaitable[dict[str, Any] | None]],
) -> ComponentHealth:
    started = time.perf_counter()
    try:
        extra = await asyncio.wait_for(check(), timeout)
        status: ComponentStatus = "healthy"
        detail = None
    except TimeoutError:
        extra, status, detail = None, "unhealthy", f"no answer within {timeout:g}s"
    except Exception as error:
        extra, status, detail = None, "unhealthy", f"{type(error).__name__}: {error}"[:300]
    latency = round((time.perf_counter() - started) * 1000, 2)
    return ComponentHealth(name, status, required, latency, backend, detail, extra or {})


async def list_llm_models(resources: Resources) -> list[str]:
    """The model ids the configured OpenAI-compatible server offers (GET /models)."""
    settings = resources.settings
    headers = {}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    response = await resources.http.get(
        f"{settings.llm_base_url}/models",
        headers=headers,
        timeout=settings.health_timeout_seconds,
    )
    response.raise_for_status()
    payload = response.json()
    return [str(item["id"]) for item in payload.get("data", []) if "id" in item]


def mcp_components(resources: Resources) -> list[ComponentHealth]:
    """One component per MCP server (`mcp:<name>`), from its connection's state: never
    required, so a server that is down degrades the service without stopping it."""
    components = []
    for server in resources.mcp_servers:
        extra: dict[str, Any] = {"tools": [spec.name for spec in server.specs()]}
        if server.collisions:
            extra["skipped_tools"] = list(server.collisions)
        components.append(
            ComponentHealth(
                f"mcp:{server.name}",
                "healthy" if server.up else "unhealthy",
                False,
                0.0,
                server.config.transport,
                None if server.up else (server.error or "not connected"),
                extra,
            )
        )
    return components


async def check_health(resources: Resources) -> HealthReport:
    """Check database, Redis, Qdrant and the LLM; only the database is required."""
    settings = resources.settings
    timeout = settings.health_timeout_seconds

    async def database() -> None:
        await ping(resources.engine)

    async def redis() -> None:
        await resources.store.ping()

    async def qdrant() -> dict[str, Any]:
        if resources.qdrant is None:
            # The embedded engine lives in this process: it is up whenever the service is.
            return {"engine": "qdrant-edge"}
        collections = await resources.qdrant.get_collections()
        return {"collections": len(collections.collections)}

    async def llm() -> dict[str, Any]:
        return {"base_url": settings.llm_base_url, "models": await list_llm_models(resources)}

    checked = await asyncio.gather(
        _timed(
            "database",
            "postgresql" if settings.uses_postgres else "sqlite",
            True,
            timeout,
            database,
        ),
        _timed("redis", resources.store.backend, False, timeout, redis),
        _timed("qdrant", "server" if settings.qdrant_url else "embedded", False, timeout, qdrant),
        _timed("llm", "openai-compatible", False, timeout, llm),
    )
    components = [*checked, *mcp_components(resources)]
    llm_health = checked[3]
    if llm_health.status == "unhealthy":
        llm_health.extra = {"base_url": settings.llm_base_url, "models": []}
    if any(c.required and c.status == "unhealthy" for c in components):
        overall: OverallStatus = "unhealthy"
    elif any(c.status == "unhealthy" for c in components):
        overall = "degraded"
    else:
        overall = "healthy"
    return HealthReport(overall, components)
