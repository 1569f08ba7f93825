"""Gauges read at scrape time: database pool use and recently active users."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from app.core import metrics
from app.core.logging import get_logger
from app.core.resources import Resources
from app.repositories.refresh_tokens import RefreshTokenRepository

log = get_logger(__name__)

ACTIVE_USER_WINDOW = timedelta(minutes=30)


async def collect_metrics(resources: Resources) -> bytes:
    """Refresh the scrape-time gauges, then render every metric in the Prometheus text format."""
    since = resources.clock.now() - ACTIVE_USER_WINDOW
    try:
        async with resources.sessionmaker() as session:
            active = await RefreshTokenRepository(session).count_active_users(since)
    except (SQLAlchemyError, OSError) as error:
        # A scrape during a database outage still returns every other metric.
        log.warning("metrics_active_users_failed", error=str(error))
    else:
        metrics.set_active_users(active)
    # Read after the query above has given its connection back.
    metrics.refresh_db_pool(resources.engine)
    return metrics.render_latest()
