"""/health and /ready: public, for load balancers and operators."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.core.errors import MAIError
from app.core.resources import Resources
from app.services.auth import AuthService
from app.services.health import check_health

router = APIRouter(tags=["health"])


async def may_see_details(request: Request, resources: Resources) -> bool:
    """Details (URLs, models, latencies, version) are shown with MAI_HEALTH_DETAILS=public, or
    to a caller sending the metrics token or an admin's access token as a bearer token."""
    settings = resources.settings
    if settings.health_details == "public":
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token or not resources.ready:
        return False
    metrics_token = settings.metrics_token
    if metrics_token is not None and hmac.compare_digest(
        token.encode(), metrics_token.get_secret_value().encode()
    ):
        return True
    async with resources.sessionmaker() as session:
        auth = AuthService(session, settings, resources.store, resources.clock)
        try:
            user, _ = await auth.authenticate(token)
        except MAIError:
            return False
    return user.is_admin


@router.get("/health", response_model=None)
async def health(request: Request) -> JSONResponse:
    """Overall status and each component's; 503 when a required component is down.

    Without a token (and MAI_HEALTH_DETAILS=token, the default) only the status of each
    component is shown.
    """
    resources = getattr(request.app.state, "resources", None)
    if resources is None:
        return JSONResponse({"status": "unhealthy", "components": []}, status_code=503)
    report = await check_health(resources)
    status_code = 503 if report.status == "unhealthy" else 200
    if not await may_see_details(request, resources):
        summary = [{"name": c.name, "status": c.status} for c in report.components]
        return JSONResponse(
            {"status": report.status, "components": summary}, status_code=status_code
        )
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
    return JSONResponse(body, status_code=status_code)


@router.get("/ready", response_model=None)
async def ready(request: Request) -> JSONResponse:
    """200 once the service has started and can take requests, 503 before and while stopping."""
    resources = getattr(request.app.state, "resources", None)
    if resources is None or not resources.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready"})
