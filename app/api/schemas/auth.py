"""Request and response bodies of auth and users."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from app.models import Role

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Length in bytes (8-72) is checked by the service: bcrypt's limit is bytes, not characters.
Password = Annotated[str, Field(min_length=1, max_length=1000)]


class RegisterIn(BaseModel):
    """Sign-up."""

    email: EmailStr
    password: Password
    full_name: Name | None = None
    invite_code: Annotated[
        str | None,
        Field(
            default=None,
            min_length=1,
            max_length=200,
            description="Needed when MAI_REGISTRATION=invite: a code an administrator issued",
        ),
    ] = None


class AdminUserCreateIn(BaseModel):
    """An account an administrator creates (any registration mode)."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Password
    full_name: Name | None = None
    role: Role = Role.user


class InviteIn(BaseModel):
    """An invite to issue; with an email it is good for that address only."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None


class InviteOut(BaseModel):
    """An issued invite: give the code to the person; it is shown only this once."""

    id: uuid.UUID
    code: str
    email: str | None
    expires_at: datetime


class LoginIn(BaseModel):
    """Sign-in with email and password."""

    email: EmailStr
    password: Password


class RefreshIn(BaseModel):
    """A refresh token to rotate."""

    refresh_token: Annotated[str, Field(min_length=1, max_length=500)]


class UserOut(BaseModel):
    """A user as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None = None
    daily_token_budget: int | None = Field(
        default=None,
        description="Own tokens-per-day budget (null: MAI_DAILY_TOKEN_BUDGET applies; 0: none)",
    )


class TokensOut(BaseModel):
    """An access + refresh token pair with the user it belongs to."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserOut


class MeUpdateIn(BaseModel):
    """What a user may change about themselves."""

    model_config = ConfigDict(extra="forbid")

    full_name: Name | None = None
    password: Password | None = None
    current_password: Password | None = None


class AdminUserUpdateIn(BaseModel):
    """What an admin may change about a user."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: StrictBool | None = None
    # Strict: a JSON `false` or "5" is refused instead of being stored as 0 or 5.
    daily_token_budget: StrictInt | None = Field(
        default=None,
        ge=0,
        le=2_000_000_000,
        description="Tokens per UTC day for this user; 0: no budget; null: back to the default",
    )
