"""Profile changes and user administration."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.config import Settings
from app.core.errors import BadRequest, Conflict, NotFound
from app.core.logging import get_logger
from app.core.security import hash_password, hash_token, verify_password
from app.models import Invite, Role, User
from app.repositories.invites import InviteRepository
from app.repositories.refresh_tokens import RefreshTokenRepository
from app.repositories.users import UserRepository
from app.services.auth import check_new_password, create_user, normalise_email


class AdminBootstrapError(RuntimeError):
    """MAI_ADMIN_EMAIL names an existing account that is not an admin: refuse to start."""


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
            check_new_password(change.password, user.email, self.settings)
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

    async def create(
        self, actor: User, *, email: str, password: str, full_name: str | None, role: Role
    ) -> User:
        """An administrator creates an account (works in every MAI_REGISTRATION mode)."""
        user = await create_user(
            self.session,
            self.settings,
            email=email,
            password=password,
            full_name=full_name,
            role=role,
        )
        await self.session.commit()
        log.info("user_created", target_user_id=str(user.id), by=str(actor.id))
        return user

    async def create_invite(self, actor: User, email: str | None) -> tuple[Invite, str]:
        """Issue a single-use invite code (only its hash is kept), valid MAI_INVITE_TTL_HOURS."""
        code = secrets.token_urlsafe(24)
        now = self.clock.now()
        invite = await InviteRepository(self.session).add(
            Invite(
                code_hash=hash_token(code),
                email=normalise_email(email) if email else None,
                created_by=actor.id,
                created_at=now,
                expires_at=now + timedelta(hours=self.settings.invite_ttl_hours),
            )
        )
        await self.session.commit()
        log.info("invite_created", invite_id=str(invite.id), by=str(actor.id))
        return invite, code

    async def delete(self, actor: User, user_id: uuid.UUID) -> None:
        """Delete a user and everything that cascades from them."""
        user = await self.get(user_id)
        if user.id == actor.id:
            raise Conflict("You cannot delete your own account here.", code="self_lockout")
        await self.users.delete(user)
        await self.session.commit()
        log.info("user_deleted", target_user_id=str(user_id), by=str(actor.id))


async def ensure_admin(session: AsyncSession, settings: Settings) -> User | None:
    """Create the configured first admin when no admin exists yet.

    An existing account with MAI_ADMIN_EMAIL that is not an admin is never promoted here:
    whoever registered that address first would otherwise become admin with their own
    password. Start is refused with a line saying how to promote deliberately.
    """
    if settings.admin_email is None or settings.admin_password is None:
        return None
    users = UserRepository(session)
    if await users.count_admins() > 0:
        return None
    email = normalise_email(settings.admin_email)
    existing = await users.get_by_email(email)
    if existing is not None:
        error = AdminBootstrapError(
            f"MAI_ADMIN_EMAIL: an account {email} already exists and is not an admin; "
            f"promote it deliberately with `mai create-admin {email}` (sets a new password) "
            f"or `mai create-admin {email} --keep-password`, or choose another address"
        )
        log.error("admin_bootstrap_refused", reason=str(error))
        raise error
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
