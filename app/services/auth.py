"""Sign-up, sign-in, token rotation with theft detection, logout and token verification."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.config import Settings
from app.core.errors import BadRequest, Conflict, Forbidden, TooManyRequests, Unauthorized
from app.core.kv import KeyValueStore
from app.core.logging import get_logger
from app.core.passwords import check_password_quality
from app.core.ratelimit import RateLimiter
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
from app.repositories.invites import InviteRepository
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


def check_new_password(password: str, email: str | None, settings: Settings) -> None:
    """Every rule a new password must pass: length in bytes, then quality (400 naming the rule)."""
    check_password_length(password)
    check_password_quality(password, email, settings.password_min_classes)


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
    email = normalise_email(email)
    check_new_password(password, email, settings)
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
        self,
        session: AsyncSession,
        settings: Settings,
        store: KeyValueStore,
        clock: Clock,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.store = store
        self.clock = clock
        self.rate_limiter = rate_limiter
        self.users = UserRepository(session)
        self.tokens = RefreshTokenRepository(session)

    async def register(
        self,
        *,
        email: str,
        password: str,
        full_name: str | None,
        user_agent: str | None,
        invite_code: str | None = None,
    ) -> tuple[User, TokenPair]:
        """Create an account and sign it in, as MAI_REGISTRATION allows.

        With `invite` the code is checked before anything about the email is looked at, so a
        caller without a valid code learns nothing about which addresses have accounts.
        """
        mode = self.settings.effective_registration
        if mode == "closed":
            raise Forbidden(
                "Sign-up is closed on this server; ask an administrator for an account.",
                code="registration_closed",
            )
        invites = InviteRepository(self.session)
        code_hash = hash_token(invite_code) if invite_code else None
        if mode == "invite" and code_hash is None:
            raise Forbidden(
                "Sign-up needs an invite on this server: send the invite_code an "
                "administrator gave you.",
                code="invite_required",
            )
        invalid = Forbidden(
            "The invite code is not valid: it is unknown, used, expired or for another address.",
            code="invite_invalid",
        )
        if (
            mode == "invite"
            and code_hash is not None
            and not await invites.usable(code_hash, normalise_email(email), self.clock.now())
        ):
            raise invalid
        user = await create_user(
            self.session, self.settings, email=email, password=password, full_name=full_name
        )
        if (
            mode == "invite"
            and code_hash is not None
            and not await invites.consume(code_hash, user.email, user.id, self.clock.now())
        ):
            # Another sign-up used the code between the check and now.
            await self.session.rollback()
            raise invalid
        pair = await self._issue(user, family_id=uuid.uuid4(), user_agent=user_agent)
        await self.session.commit()
        log.info("user_registered", user_id=str(user.id))
        return user, pair

    async def login(
        self, *, email: str, password: str, user_agent: str | None
    ) -> tuple[User, TokenPair]:
        """Check credentials and start a new token family.

        Unknown email, wrong password and a deactivated account all answer the same 401 in
        the same time; repeated attempts on one account lock it whatever the address.
        """
        email = normalise_email(email)
        await self._count_login_attempt(email)
        user = await self.users.get_by_email(email)
        ok = await verify_password_or_dummy(
            password, user.password_hash if user else None, self.settings.bcrypt_rounds
        )
        if user is None or not ok or not user.is_active:
            raise Unauthorized("Wrong email or password.", code="invalid_credentials")
        await self._reset_login_attempts(email)
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

    async def _login_generation(self, email: str) -> str:
        return await self.store.get(f"auth:login-gen:{email}") or "0"

    async def _count_login_attempt(self, email: str) -> None:
        """Count an attempt on this account; 429 account_locked past MAI_LOGIN_MAX_FAILURES.

        Attempts are counted before the password is checked so that parallel guesses are
        counted too; a successful login starts a new count (a new generation key).
        """
        limit = self.settings.login_max_failures
        if limit <= 0 or self.rate_limiter is None:
            return
        generation = await self._login_generation(email)
        result = await self.rate_limiter.hit(
            f"login-account:{email}:{generation}",
            limit,
            float(self.settings.login_failure_window_seconds),
        )
        if not result.allowed:
            retry = max(1, result.reset_seconds)
            log.warning("login_locked", retry_after=retry)
            raise TooManyRequests(
                f"Too many failed sign-ins for this account: try again in {retry}s.",
                code="account_locked",
                headers={"Retry-After": str(retry)},
                meta={"retry_after": retry},
            )

    async def _reset_login_attempts(self, email: str) -> None:
        if self.settings.login_max_failures > 0 and self.rate_limiter is not None:
            await self.store.set(
                f"auth:login-gen:{email}",
                uuid.uuid4().hex,
                ttl_seconds=float(self.settings.login_failure_window_seconds) + 60,
            )

    async def authenticate(self, token: str) -> tuple[User, AccessClaims]:
        """The active user behind a valid, not logged-out access token."""
        claims = decode_access_token(token, key=self.settings.jwt_signing_key, now=self.clock.now())
        return await self.recheck(claims), claims

    async def recheck(self, claims: AccessClaims) -> User:
        """The active user behind already-decoded claims, re-checked now: not expired, not
        logged out, session not revoked, account still there and active.

        Long-lived connections call this again and again to stay authorised.
        """
        if claims.expires_at <= self.clock.now():
            raise Unauthorized("The access token has expired; refresh it.", code="token_expired")
        if await self.store.get(denylist_key(claims.token_id)) is not None:
            raise Unauthorized("This access token was logged out.", code="token_revoked")
        if await self.tokens.family_revoked(claims.session_id):
            raise Unauthorized("This session was signed out.", code="token_revoked")
        user = await self.users.get(claims.user_id)
        if user is None:
            raise Unauthorized("The account no longer exists.", code="invalid_token")
        if not user.is_active:
            raise Forbidden("This account is disabled; ask an admin.", code="user_inactive")
        return user

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
