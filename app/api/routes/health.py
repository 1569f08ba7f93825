"""/health and /ready: public, for load balancers and operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.services.health import check_health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=None)
async def health(request: Request) -> JSONResponse:
    """Overall status and each component's; 503 when a required component is down."""
    resources = getattr(request.app.state, "resources", None)
    if resources is None:
        return JSONResponse({"status": "unhealthy", "components": []}, status_code=503)
    report = await check_health(resources)
    body: dict[str, Any] = {
        "status": report.status,
        "version": request.app.version,
        "components": [
            {
                "name": c.name,
                "status": c.status,
                "required": c.required,
                "backend": c.backend,
                "latency_ms": c.latency_ms,
                **({"detail": c.detail} if c.detail else {}),
                **c.extra,
            }
            for c in report.components
        ],
    }
    return JSONResponse(body, status_code=503 if report.status == "unhealthy" else 200)


@router.get("/ready", response_model=None)
async def ready(request: Request) -> JSONResponse:
    """200 once the service has started and can take requests, 503 before and while stopping."""
    resources = getattr(request.app.state, "resources", None)
    if resources is None or not resources.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready"})
