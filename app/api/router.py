"""Every /api/v1 route, assembled."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import (
    agent,
    analytics,
    api_keys,
    approvals,
    auth,
    feedback,
    kb,
    kb_collections,
    memory,
    tools,
    users,
)

# Each router's prefix starts with /api/v1.
API_ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    users.router,
    agent.router,
    approvals.router,
    kb.router,
    kb_collections.router,
    analytics.router,
    feedback.router,
    memory.router,
    api_keys.router,
    tools.router,
)
