"""Users and their refresh-token sessions."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin


class Role(StrEnum):
    """What a user may do: admins manage users and see everything."""

    user = "user"
    admin = "admin"


class User(IdMixin, TimestampMixin, Base):
    """A person or client that signs in to MAI."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20), default=Role.user.value)
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None] = mapped_column()
    # Tokens a UTC day for this user: None follows MAI_DAILY_TOKEN_BUDGET, 0 means no budget.
    daily_token_budget: Mapped[int | None] = mapped_column()

    @property
    def is_admin(self) -> bool:
        """Whether this user has the admin role."""
        return self.role == Role.admin.value


class RefreshToken(IdMixin, Base):
    """One refresh token of a token family; rotation links a family, reuse revokes it."""

    __tablename__ = "refresh_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    rotated_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    user_agent: Mapped[str | None] = mapped_column(String(300))
