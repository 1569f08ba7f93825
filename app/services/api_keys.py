"""API keys: created by a signed-in user, shown once, stored as a hash, accepted in
`X-Api-Key` wherever the LangGraph API takes credentials."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from app.core.errors import NotFound, Unauthorized, Unprocessable
from app.core.resources import Resources
from app.core.security import hash_token
from app.models import ApiKey, User
from app.repositories.api_keys import ApiKeyRepository
from app.repositories.users import UserRepository

KEY_PREFIX = "mai_"
# Shown in listings so a user can tell keys apart; far too short to guess the rest from.
SHOWN_PREFIX_CHARS = 12
# A last-used time closer than this to the stored one is not written again.
TOUCH_INTERVAL = timedelta(minutes=1)


def new_api_key() -> str:
    """A fresh key: the `mai_` prefix then 32 random bytes, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKeyService:
    """Create, list, revoke and check API keys."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def create(
        self, user_id: uuid.UUID, name: str, expires_at: datetime | None
    ) -> tuple[ApiKey, str]:
        """A new key for the user: its row and the key itself (never shown again)."""
        now = self.resources.clock.now()
        if expires_at is not None and expires_at <= now:
            raise Unprocessable("expires_at must be in the future.", code="invalid_expiry")
        key = new_api_key()
        async with self.resources.sessionmaker() as session:
            row = await ApiKeyRepository(session).add(
                ApiKey(
                    user_id=user_id,
                    name=name,
                    prefix=key[:SHOWN_PREFIX_CHARS],
                    key_hash=hash_token(key),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            await session.commit()
        return row, key

    async def list(self, user_id: uuid.UUID) -> Sequence[ApiKey]:
        """The user's active keys (revoked ones are gone), newest first."""
        async with self.resources.sessionmaker() as session:
            return await ApiKeyRepository(session).for_user(user_id)

    async def revoke(self, user_id: uuid.UUID, key_id: uuid.UUID) -> None:
        """Revoke one of the user's keys (404 for another user's or an unknown one)."""
        async with self.resources.sessionmaker() as session:
            if not await ApiKeyRepository(session).revoke(
                key_id, user_id, self.resources.clock.now()
            ):
                raise NotFound(f"No API key with id {key_id}.", code="api_key_not_found")
            await session.commit()

    async def authenticate(self, key: str) -> User:
        """The active user owning this key; 401 for an unknown, revoked or expired key."""
        if not key.startswith(KEY_PREFIX):
            raise Unauthorized("This API key is not valid.", code="invalid_api_key")
        now = self.resources.clock.now()
        async with self.resources.sessionmaker() as session:
            keys = ApiKeyRepository(session)
            row = await keys.by_hash(hash_token(key))
            if row is None or row.revoked_at is not None:
                raise Unauthorized(
                    "This API key is not valid or was revoked.", code="invalid_api_key"
                )
            if row.expires_at is not None and row.expires_at <= now:
                raise Unauthorized("This API key has expired.", code="api_key_expired")
            user = await UserRepository(session).get(row.user_id)
            if user is None or not user.is_active:
                raise Unauthorized("This API key's user is disabled.", code="user_inactive")
            if row.last_used_at is None or now - row.last_used_at > TOUCH_INTERVAL:
                await keys.touch(row.id, now)
                await session.commit()
            return user
