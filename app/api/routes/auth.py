"""/auth: register, login, refresh, logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, status

from app.api.deps import AuthAttemptLimit, AuthServiceDep, CallerDep
from app.api.schemas.auth import LoginIn, RefreshIn, RegisterIn, TokensOut, UserOut
from app.models import User
from app.services.auth import TokenPair

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
UserAgent = Annotated[str | None, Header()]


def _tokens(user: User, pair: TokenPair) -> TokensOut:
    return TokensOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
        user=UserOut.model_validate(user),
    )


@router.post("/register", status_code=status.HTTP_201_CREATED, dependencies=[AuthAttemptLimit])
async def register(
    body: RegisterIn, auth: AuthServiceDep, user_agent: UserAgent = None
) -> TokensOut:
    """Create an account and return it with a token pair."""
    user, pair = await auth.register(
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        user_agent=user_agent,
        invite_code=body.invite_code,
    )
    return _tokens(user, pair)


@router.post("/login", dependencies=[AuthAttemptLimit])
async def login(body: LoginIn, auth: AuthServiceDep, user_agent: UserAgent = None) -> TokensOut:
    """Exchange email and password for an access + refresh token pair."""
    user, pair = await auth.login(email=body.email, password=body.password, user_agent=user_agent)
    return _tokens(user, pair)


@router.post("/refresh")
async def refresh(body: RefreshIn, auth: AuthServiceDep, user_agent: UserAgent = None) -> TokensOut:
    """Rotate a refresh token into a new pair."""
    user, pair = await auth.refresh(body.refresh_token, user_agent)
    return _tokens(user, pair)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(caller: CallerDep, auth: AuthServiceDep) -> None:
    """Revoke the access token sent and its refresh-token family."""
    await auth.logout(caller.claims)
