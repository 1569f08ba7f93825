"""Annotated dependencies: resources, one DB session per request, the caller, pagination."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.config import Settings
from app.core.errors import Forbidden, TooManyRequests, Unauthorized
from app.core.logging import bind_context
from app.core.metrics import record_rate_limit_rejection
from app.core.resources import Resources, require_ready
from app.core.security import AccessClaims
from app.models import User
from app.services.analytics import AnalyticsService
from app.services.auth import AuthService


def get_resources(request: Request) -> Resources:
    """The app instance's resources (503 until the lifespan has opened them)."""
    return require_ready(getattr(request.app.state, "resources", None))


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_settings(resources: ResourcesDep) -> Settings:
    """The app instance's settings."""
    return resources.settings


def get_clock(resources: ResourcesDep) -> Clock:
    """The app instance's clock."""
    return resources.clock


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One database session per request; services commit, anything left is rolled back."""
    async with resources.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_auth_service(session: SessionDep, resources: ResourcesDep) -> AuthService:
    """The auth use cases bound to this request's session."""
    return AuthService(
        session, resources.settings, resources.store, resources.clock, resources.rate_limiter
    )


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]

_bearer = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/login")


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated user and the claims of the token they sent."""

    user: User
    claims: AccessClaims


RATE_WINDOW_SECONDS = 60.0


async def enforce_rate_limit(
    request: Request, resources: Resources, key: str, limit: int, what: str
) -> None:
    """Count a hit for key; 429 with Retry-After over the limit. Headers go on every answer."""
    if limit <= 0:
        return
    result = await resources.rate_limiter.hit(key, limit, RATE_WINDOW_SECONDS)
    request.scope.setdefault("state", {})["rate_limit_headers"] = result.headers
    if not result.allowed:
        # "user:<id>" -> "user", "auth-ip:<address>" -> "auth-ip": one series per limit.
        record_rate_limit_rejection(key.split(":", 1)[0])
        raise TooManyRequests(
            f"Too many {what}: at most {limit} a minute. Retry in {result.reset_seconds}s.",
            code="rate_limited",
            headers=result.headers,
            meta={"limit": limit, "retry_after": max(1, result.reset_seconds)},
        )


async def get_caller(
    request: Request,
    resources: ResourcesDep,
    auth: AuthServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Verify the bearer token (401/403) and count the request against the user's rate limit."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send an access token as `Authorization: Bearer <token>`.")
    user, claims = await auth.authenticate(credentials.credentials)
    bind_context(user_id=str(user.id))
    await enforce_rate_limit(
        request,
        resources,
        f"user:{user.id}",
        resources.settings.rate_limit_per_minute,
        "requests",
    )
    return Caller(user, claims)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_current_user(caller: CallerDep) -> User:
    """The authenticated user."""
    return caller.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def authenticate_key_or_token(
    request: Request,
    resources: Resources,
    auth: AuthService,
    bearer: str | None,
    api_key: str | None,
) -> User:
    """The caller by an API key (`X-Api-Key`, or a bearer token with the key prefix) or an
    access token; 401 without either. Counted against the user's rate limit."""
    from app.services.api_keys import KEY_PREFIX, ApiKeyService

    # OpenAI clients send their key as a bearer token: a MAI API key is recognised by prefix.
    if not api_key and bearer is not None and bearer.startswith(KEY_PREFIX):
        api_key = bearer
    if api_key:
        user = await ApiKeyService(resources).authenticate(api_key)
    elif bearer is not None:
        user, _ = await auth.authenticate(bearer)
    else:
        raise Unauthorized(
            "Send an API key as `X-Api-Key: mai_...` or an access token as "
            "`Authorization: Bearer <token>`."
        )
    bind_context(user_id=str(user.id))
    await enforce_rate_limit(
        request,
        resources,
        f"user:{user.id}",
        resources.settings.rate_limit_per_minute,
        "requests",
    )
    return user


async def get_key_or_token_user(
    request: Request,
    resources: ResourcesDep,
    auth: AuthServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Header(alias="X-Api-Key")] = None,
) -> User:
    """The caller by an API key in `X-Api-Key` (what langgraph-sdk sends) or a bearer access
    token; 401 without either. Counted against the user's rate limit like any request."""
    bearer = (
        credentials.credentials
        if credentials is not None and credentials.scheme.lower() == "bearer"
        else None
    )
    return await authenticate_key_or_token(request, resources, auth, bearer, api_key)


KeyOrTokenUser = Annotated[User, Depends(get_key_or_token_user)]


async def get_admin_user(user: CurrentUser) -> User:
    """The authenticated user, who must be an admin (403 otherwise)."""
    if not user.is_admin:
        raise Forbidden("This needs the admin role.", code="admin_required")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


async def check_token_budget(user: CurrentUser, resources: ResourcesDep) -> None:
    """Before a turn: 429 token_budget_exceeded (Retry-After: next UTC midnight) when the
    caller's daily token budget is used up."""
    await AnalyticsService(resources).check_budget(user)


TokenBudgetCheck = Depends(check_token_budget)


async def check_key_or_token_budget(user: KeyOrTokenUser, resources: ResourcesDep) -> None:
    """The same budget check for routes that also take API keys."""
    await AnalyticsService(resources).check_budget(user)


KeyOrTokenBudgetCheck = Depends(check_key_or_token_budget)


def client_ip(request: Request) -> str:
    """The caller's address (uvicorn resolves trusted proxy headers into it)."""
    return request.client.host if request.client else "unknown"


async def limit_auth_attempts(request: Request, resources: ResourcesDep) -> None:
    """Per-IP limit on sign-in and sign-up, against password guessing and sign-up floods."""
    await enforce_rate_limit(
        request,
        resources,
        f"auth-ip:{client_ip(request)}",
        resources.settings.auth_rate_limit_per_minute,
        "sign-in attempts from this address",
    )


AuthAttemptLimit = Depends(limit_auth_attempts)


# Past any real table; keeps the bound parameter inside a 32-bit integer on every database.
MAX_OFFSET = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Page:
    """Limit/offset pagination."""

    limit: int
    offset: int


def get_page(
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page")] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")] = 0,
) -> Page:
    """Pagination parameters."""
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(get_page)]
