"""Passwords (bcrypt, used directly) and tokens (HS256 JWT access tokens, opaque refresh tokens)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import bcrypt
from jose import JWTError, jwt

from app.core.errors import Unauthorized

JWT_ALGORITHM = "HS256"
MAX_PASSWORD_BYTES = 72  # bcrypt ignores everything after 72 bytes; refuse rather than truncate
MIN_PASSWORD_BYTES = 8


def _hash_password_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


def _verify_password_sync(password: str, password_hash: str) -> bool:
    encoded = password.encode()
    if len(encoded) > MAX_PASSWORD_BYTES:
        return False
    try:
        return bcrypt.checkpw(encoded, password_hash.encode())
    except ValueError:
        return False


async def hash_password(password: str, rounds: int) -> str:
    """bcrypt-hash a password off the event loop (a cost-12 hash takes a quarter second)."""
    return await asyncio.to_thread(_hash_password_sync, password, rounds)


async def verify_password(password: str, password_hash: str) -> bool:
    """Check a password against its bcrypt hash off the event loop."""
    return await asyncio.to_thread(_verify_password_sync, password, password_hash)


_DUMMY_HASHES: dict[int, str] = {}


def _dummy_hash(rounds: int) -> str:
    """A real hash at the configured cost, made once per cost: checking an unknown email
    then takes as long as checking a wrong password, so timing does not reveal accounts."""
    if rounds not in _DUMMY_HASHES:
        _DUMMY_HASHES[rounds] = _hash_password_sync(secrets.token_urlsafe(16), rounds)
    return _DUMMY_HASHES[rounds]


async def verify_password_or_dummy(password: str, password_hash: str | None, rounds: int) -> bool:
    """Verify a password, spending the same time when there is no user to check against."""
    if password_hash is None:
        dummy = await asyncio.to_thread(_dummy_hash, rounds)
        await verify_password(password, dummy)
        return False
    return await verify_password(password, password_hash)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    token_id: str
    role: str
    expires_at: datetime


def create_access_token(
    *,
    key: str,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    role: str,
    now: datetime,
    ttl: timedelta,
) -> tuple[str, AccessClaims]:
    """Sign a short-lived HS256 access token bound to a refresh-token family."""
    expires_at = now + ttl
    token_id = uuid.uuid4().hex
    payload = {
        "sub": str(user_id),
        "sid": str(session_id),
        "jti": token_id,
        "role": role,
        "type": "access",
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    token = jwt.encode(payload, key, algorithm=JWT_ALGORITHM)
    return token, AccessClaims(user_id, session_id, token_id, role, expires_at)


def decode_access_token(token: str, *, key: str, now: datetime) -> AccessClaims:
    """Verify signature, algorithm, type and expiry; anything off is a 401."""
    try:
        header = jwt.get_unverified_header(token)
    except JWTError:
        raise Unauthorized("The access token is malformed.", code="invalid_token")
    if header.get("alg") != JWT_ALGORITHM:
        raise Unauthorized("The access token uses an unsupported algorithm.", code="invalid_token")
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            # Expiry is checked below against the injected clock, so tests can control it.
            options={"verify_exp": False, "require_sub": True},
        )
    except JWTError:
        raise Unauthorized("The access token is invalid.", code="invalid_token")
    if payload.get("type") != "access":
        raise Unauthorized("This is not an access token.", code="invalid_token")
    try:
        expires_at = datetime.fromtimestamp(int(payload["exp"]), tz=now.tzinfo)
        claims = AccessClaims(
            user_id=uuid.UUID(str(payload["sub"])),
            session_id=uuid.UUID(str(payload["sid"])),
            token_id=str(payload["jti"]),
            role=str(payload.get("role", "user")),
            expires_at=expires_at,
        )
    except (KeyError, ValueError, TypeError):
        raise Unauthorized("The access token is missing claims.", code="invalid_token")
    if expires_at <= now:
        raise Unauthorized("The access token has expired; refresh it.", code="token_expired")
    return claims


def new_refresh_token() -> str:
    """An opaque, unguessable refresh token."""
    return secrets.token_urlsafe(48)


def hash_token(token: str) -> str:
    """The stored form of a refresh token (SHA-256: it is random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()
