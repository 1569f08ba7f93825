"""GET /metrics: the Prometheus scrape endpoint, optionally behind MAI_METRICS_TOKEN."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info

from app.api.deps import ResourcesDep, SettingsDep
from app.api.mounting import mount
from app.core import metrics
from app.core.errors import Unauthorized
from app.services.metrics import collect_metrics

router = APIRouter(tags=["monitoring"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {metrics.CONTENT_TYPE: {}}, "description": "Prometheus text"}},
)
async def scrape(request: Request, settings: SettingsDep, resources: ResourcesDep) -> Response:
    """Every HTTP and MAI metric in the Prometheus text format (merged over worker processes)."""
    if settings.metrics_token is not None:
        expected = settings.metrics_token.get_secret_value()
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            raise Unauthorized(
                "Scraping /metrics needs the bearer token set in MAI_METRICS_TOKEN.",
                code="metrics_token_required",
            )
    return Response(await collect_metrics(resources), media_type=metrics.CONTENT_TYPE)


def _record_http(info: Info) -> None:
    metrics.observe_http(
        info.modified_handler, info.request.method, info.modified_status, info.modified_duration
    )


def install(app: FastAPI) -> None:
    """Serve /metrics and record HTTP metrics for every route, labelled by route template."""
    mount(app, router)
    # The HTTP metrics live in app.core.metrics (defined once per process, however many app
    # instances a process builds); the instrumentator resolves the route template for them.
    Instrumentator(
        should_group_status_codes=True,
        should_ignore_untemplated=False,
        should_group_untemplated=True,
        excluded_handlers=["/metrics"],
    ).add(_record_http).instrument(app)
