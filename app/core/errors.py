"""The one error family: each expected failure carries its HTTP status, code and message."""

from __future__ import annotations

from typing import Any


class MAIError(Exception):
    """Base of every expected failure; the API turns it into the one JSON error shape."""

    status_code: int = 500
    code: str = "internal_error"
    default_detail: str = "Something went wrong on our side."

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        meta: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        if code is not None:
            self.code = code
        self.meta = meta
        self.headers = headers
        super().__init__(self.detail)


class BadRequest(MAIError):
    """The request is well-formed but cannot be carried out as asked."""

    status_code = 400
    code = "bad_request"
    default_detail = "The request cannot be carried out as sent."


class Unauthorized(MAIError):
    """Missing, invalid, expired or revoked credentials."""

    status_code = 401
    code = "unauthorized"
    default_detail = "Authentication is required: send a valid bearer access token."

    def __init__(self, detail: str | None = None, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(MAIError):
    """Authenticated, but not allowed to do this."""

    status_code = 403
    code = "forbidden"
    default_detail = "You are not allowed to do this."


class NotFound(MAIError):
    """The resource does not exist, or is not the caller's to see."""

    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class Conflict(MAIError):
    """The request conflicts with the current state of the resource."""

    status_code = 409
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class PayloadTooLarge(MAIError):
    """The body is over the configured limit."""

    status_code = 413
    code = "payload_too_large"
    default_detail = "The request body is too large."


class UnsupportedMediaType(MAIError):
    """The content is of a type MAI does not accept here."""

    status_code = 415
    code = "unsupported_media_type"
    default_detail = "This content type is not supported."


class Unprocessable(MAIError):
    """The input failed validation."""

    status_code = 422
    code = "validation_error"
    default_detail = "The request is not valid."


class TooManyRequests(MAIError):
    """A rate limit or a budget was exceeded."""

    status_code = 429
    code = "rate_limited"
    default_detail = "Too many requests: slow down and retry later."


class ServiceUnavailable(MAIError):
    """A dependency (LLM, vector store, database) is down or not answering."""

    status_code = 503
    code = "service_unavailable"
    default_detail = "A service MAI depends on is unavailable; retry later."


class DatabaseUnavailable(ServiceUnavailable):
    """The database (PostgreSQL or the SQLite file) cannot be reached right now."""

    code = "database_unavailable"
    default_detail = "The database is unreachable right now; retry in a few seconds."

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
