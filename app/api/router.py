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

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(agent.router)
api_router.include_router(approvals.router)
api_router.include_router(kb.router)
api_router.include_router(kb_collections.router)
api_router.include_router(analytics.router)
api_router.include_router(feedback.router)
api_router.include_router(memory.router)
api_router.include_router(api_keys.router)
api_router.include_router(tools.router)
