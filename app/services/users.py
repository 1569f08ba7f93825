"""Profile changes and user administration."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.config import Settings
from app.core.errors import BadRequest, Conflict, NotFound
from app.core.logging import get_logger
from app.core.security import hash_password, verify_password
from app.models import Role, User
from app.repositories.refresh_tokens import RefreshTokenRepository
from app.repositories.users import UserRepository
from app.services.auth import check_password_length, create_user

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """What a user may change about themselves."""

    full_name: str | None = None
    password: str | None = None
    current_password: str | None = None
    full_name_set: bool = False


@dataclass(frozen=True, slots=True)
class AdminChange:
    """What an admin may change about a user."""

    role: Role | None = None
    is_active: bool | None = None
    daily_token_budget: int | None = None
    daily_token_budget_set: bool = False  # null clears the user's own budget


class UserService:
    """User use cases within one database session."""

    def __init__(self, session: AsyncSession, settings: Settings, clock: Clock) -> None:
        self.session = session
        self.settings = settings
        self.clock = clock
        self.users = UserRepository(session)
        self.tokens = RefreshTokenRepository(session)

    async def update_me(self, user: User, change: ProfileChange, session_id: uuid.UUID) -> User:
        """Change name and/or password; a new password needs the current one."""
        if change.full_name_set:
            user.full_name = change.full_name
        if change.password is not None:
            if not change.current_password:
                raise BadRequest(
                    "Send current_password to change the password.",
                    code="current_password_required",
                )
            if not await verify_password(change.current_password, user.password_hash):
                raise BadRequest("The current password is wrong.", code="invalid_current_password")
            check_password_length(change.password)
            user.password_hash = await hash_password(change.password, self.settings.bcrypt_rounds)
            # Other devices signed in with the old password are signed out.
            await self.tokens.revoke_user(user.id, self.clock.now(), keep_family=session_id)
        await self.session.commit()
        return user

    async def get(self, user_id: uuid.UUID) -> User:
        """A user by id, or 404."""
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound(f"No user with id {user_id}.", code="user_not_found")
        return user

    async def list(self, *, limit: int, offset: int) -> tuple[Sequence[User], int]:
        """A page of users."""
        return await self.users.list(limit=limit, offset=offset)

    async def admin_update(self, actor: User, user_id: uuid.UUID, change: AdminChange) -> User:
        """Change role or active flag; an admin cannot lock themselves out."""
        user = await self.get(user_id)
        if user.id == actor.id and (
            (change.role is not None and change.role is not Role.admin) or change.is_active is False
        ):
            raise Conflict(
                "You cannot remove your own admin role or deactivate yourself; ask another admin.",
                code="self_lockout",
            )
        if change.role is not None:
            user.role = change.role.value
        if change.daily_token_budget_set:
            user.daily_token_budget = change.daily_token_budget
        if change.is_active is not None:
            user.is_active = change.is_active
            if not change.is_active:
                await self.tokens.revoke_user(user.id, self.clock.now())
        await self.session.commit()
        log.info("user_updated", target_user_id=str(user.id), by=str(actor.id))
        return user

    async def delete(self, actor: User, user_id: uuid.UUID) -> None:
        """Delete a user and everything that cascades from them."""
        user = await self.get(user_id)
        if user.id == actor.id:
            raise Conflict("You cannot delete your own account here.", code="self_lockout")
        await self.users.delete(user)
        await self.session.commit()
        log.info("user_deleted", target_user_id=str(user_id), by=str(actor.id))


async def ensure_admin(session: AsyncSession, settings: Settings) -> User | None:
    """Create the configured first admin when no admin exists yet."""
    if settings.admin_email is None or settings.admin_password is None:
        return None
    users = UserRepository(session)
    if await users.count_admins() > 0:
        return None
    existing = await users.get_by_email(settings.admin_email.strip().lower())
    if existing is not None:
        existing.role = Role.admin.value
        existing.is_active = True
        await session.commit()
        return existing
    user = await create_user(
        session,
        settings,
        email=settings.admin_email,
        password=settings.admin_password.get_secret_value(),
        full_name="Administrator",
        role=Role.admin,
    )
    await session.commit()
    log.info("admin_created", email=user.email)
    return user
