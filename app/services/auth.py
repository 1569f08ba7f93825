"""Sign-up, sign-in, token rotation with theft detection, logout and token verification."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.config import Settings
from app.core.errors import BadRequest, Conflict, Forbidden, Unauthorized
from app.core.kv import KeyValueStore
from app.core.logging import get_logger
from app.core.security import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_BYTES,
    AccessClaims,
    create_access_token,
    decode_access_token,
    hash_password,
    hash_token,
    new_refresh_token,
    verify_password_or_dummy,
)
from app.models import RefreshToken, Role, User
from app.repositories.refresh_tokens import RefreshTokenRepository
from app.repositories.users import UserRepository

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access token with its refresh token."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively: store and look them up lower-cased and trimmed."""
    return email.strip().lower()


def check_password_length(password: str) -> None:
    """Refuse passwords bcrypt cannot take whole, and short ones."""
    size = len(password.encode())
    if size < MIN_PASSWORD_BYTES:
        raise BadRequest(
            f"The password must be at least {MIN_PASSWORD_BYTES} bytes long.",
            code="password_too_short",
        )
    if size > MAX_PASSWORD_BYTES:
        raise BadRequest(
            f"The password must be at most {MAX_PASSWORD_BYTES} bytes long (UTF-8).",
            code="password_too_long",
        )


def denylist_key(token_id: str) -> str:
    """Store key under which a logged-out access token id is kept until it expires."""
    return f"auth:denied:{token_id}"


async def create_user(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    full_name: str | None,
    role: Role = Role.user,
) -> User:
    """Insert a user with a bcrypt hash (not committed); a taken email is a 409."""
    check_password_length(password)
    email = normalise_email(email)
    users = UserRepository(session)
    if await users.get_by_email(email) is not None:
        raise Conflict("An account with this email already exists.", code="email_taken")
    user = User(
        email=email,
        full_name=full_name,
        password_hash=await hash_password(password, settings.bcrypt_rounds),
        role=role.value,
    )
    try:
        await users.add(user)
    except IntegrityError:
        # Two registrations racing for one email: the loser gets the same answer.
        await session.rollback()
        raise Conflict("An account with this email already exists.", code="email_taken")
    return user


class AuthService:
    """Auth use cases within one database session."""

    def __init__(
        self, session: AsyncSession, settings: Settings, store: KeyValueStore, clock: Clock
    ) -> None:
        self.session = session
        self.settings = settings
        self.store = store
        self.clock = clock
        self.users = UserRepository(session)
        self.tokens = RefreshTokenRepository(session)

    async def register(
        self, *, email: str, password: str, full_name: str | None, user_agent: str | None
    ) -> tuple[User, TokenPair]:
        """Create an account and sign it in."""
        user = await create_user(
            self.session, self.settings, email=email, password=password, full_name=full_name
        )
        pair = await self._issue(user, family_id=uuid.uuid4(), user_agent=user_agent)
        await self.session.commit()
        log.info("user_registered", user_id=str(user.id))
        return user, pair

    async def login(
        self, *, email: str, password: str, user_agent: str | None
    ) -> tuple[User, TokenPair]:
        """Check credentials and start a new token family."""
        user = await self.users.get_by_email(normalise_email(email))
        ok = await verify_password_or_dummy(password, user.password_hash if user else None)
        if user is None or not ok:
            raise Unauthorized("Wrong email or password.", code="invalid_credentials")
        if not user.is_active:
            raise Forbidden("This account is disabled; ask an admin.", code="user_inactive")
        user.last_login_at = self.clock.now()
        pair = await self._issue(user, family_id=uuid.uuid4(), user_agent=user_agent)
        await self.session.commit()
        return user, pair

    async def refresh(self, refresh_token: str, user_agent: str | None) -> tuple[User, TokenPair]:
        """Rotate a refresh token; presenting a rotated one revokes its whole family."""
        now = self.clock.now()
        stored = await self.tokens.get_by_hash(hash_token(refresh_token))
        if stored is None:
            raise Unauthorized("The refresh token is not valid.", code="invalid_token")
        if stored.revoked_at is not None:
            raise Unauthorized(
                "The refresh token was revoked; sign in again.", code="token_revoked"
            )
        if stored.rotated_at is not None or not await self.tokens.mark_rotated(stored.id, now):
            await self.tokens.revoke_family(stored.family_id, now)
            await self.session.commit()
            log.warning(
                "refresh_token_reuse", user_id=str(stored.user_id), family=str(stored.family_id)
            )
            raise Unauthorized(
                "This refresh token was already used; every session it belongs to is now "
                "signed out. Sign in again.",
                code="token_reused",
            )
        if stored.expires_at <= now:
            await self.session.rollback()
            raise Unauthorized(
                "The refresh token has expired; sign in again.", code="token_expired"
            )
        user = await self.users.get(stored.user_id)
        if user is None:
            raise Unauthorized("The account no longer exists.", code="invalid_token")
        if not user.is_active:
            raise Forbidden("This account is disabled; ask an admin.", code="user_inactive")
        pair = await self._issue(user, family_id=stored.family_id, user_agent=user_agent)
        await self.session.commit()
        return user, pair

    async def logout(self, claims: AccessClaims) -> None:
        """Refuse this access token until it expires and revoke its refresh family."""
        ttl = (claims.expires_at - self.clock.now()).total_seconds()
        if ttl > 0:
            await self.store.set(denylist_key(claims.token_id), "1", ttl_seconds=ttl + 1)
        await self.tokens.revoke_family(claims.session_id, self.clock.now())
        await self.session.commit()

    async def authenticate(self, token: str) -> tuple[User, AccessClaims]:
        """The active user behind a valid, not logged-out access token."""
        claims = decode_access_token(token, key=self.settings.jwt_signing_key, now=self.clock.now())
        if await self.store.get(denylist_key(claims.token_id)) is not None:
            raise Unauthorized("This access token was logged out.", code="token_revoked")
        if await self.tokens.family_revoked(claims.session_id):
            raise Unauthorized("This session was signed out.", code="token_revoked")
        user = await self.users.get(claims.user_id)
        if user is None:
            raise Unauthorized("The account no longer exists.", code="invalid_token")
        if not user.is_active:
            raise Forbidden("This account is disabled; ask an admin.", code="user_inactive")
        return user, claims

    async def _issue(
        self, user: User, *, family_id: uuid.UUID, user_agent: str | None
    ) -> TokenPair:
        now = self.clock.now()
        ttl = timedelta(minutes=self.settings.access_token_ttl_minutes)
        access, _ = create_access_token(
            key=self.settings.jwt_signing_key,
            user_id=user.id,
            session_id=family_id,
            role=user.role,
            now=now,
            ttl=ttl,
        )
        refresh = new_refresh_token()
        await self.tokens.add(
            RefreshToken(
                user_id=user.id,
                family_id=family_id,
                token_hash=hash_token(refresh),
                created_at=now,
                expires_at=now + timedelta(days=self.settings.refresh_token_ttl_days),
                user_agent=(user_agent or "")[:300] or None,
            )
        )
        return TokenPair(access, refresh, int(ttl.total_seconds()))
