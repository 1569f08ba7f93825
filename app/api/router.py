"""Every /api/v1 route, assembled."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import auth, users

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(users.router)
