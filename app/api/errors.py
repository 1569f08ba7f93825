"""The one exception handler family: every error leaves as {error, detail, request_id}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.db import is_database_outage
from app.core.errors import DatabaseUnavailable, MAIError
from app.core.logging import get_logger

log = get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


_BODY_PARSE_FAILED = "There was an error parsing the body"


def request_id_of(request: Request) -> str | None:
    """The id the request-id middleware gave this request."""
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value is not None else None


def error_body(
    code: str, detail: str, request_id: str | None, meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The one JSON error shape."""
    body: dict[str, Any] = {"error": code, "detail": detail, "request_id": request_id}
    if meta:
        body["meta"] = meta
    return body


def _describe_validation(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        loc = tuple(error.get("loc", ()))
        location = ".".join(str(p) for p in loc if p not in ("body", "query"))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if not location and loc[:1] == ("body",):
            location = "request body"  # the body as a whole: missing, or not a JSON object
        parts.append(f"{location}: {message}" if location else message)
    more = len(errors) - 5
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


async def mai_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """MAIError → its status and code."""
    assert isinstance(exc, MAIError)
    return JSONResponse(
        error_body(exc.code, exc.detail, request_id_of(request), exc.meta),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Pydantic request validation → 422 in the one shape, naming the fields."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(
            error_body(
                "invalid_json",
                "The request body is not valid JSON; send a JSON object.",
                request_id_of(request),
            ),
            status_code=400,
        )
    return JSONResponse(
        error_body(
            "validation_error",
            _describe_validation(errors),
            request_id_of(request),
            {"fields": [".".join(str(p) for p in e.get("loc", ())) for e in errors]},
        ),
        status_code=422,
    )


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own HTTP errors (404 route, 405 method) in the one shape."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route for {request.method} {request.url.path}."
    if exc.status_code == 400 and detail == _BODY_PARSE_FAILED:
        # FastAPI's answer when decoding the body fails other than as bad JSON syntax: not UTF-8,
        # nested too deep, a number with too many digits.
        code = "invalid_json"
        detail = (
            "The request body could not be decoded: send a UTF-8 JSON object without "
            "extreme nesting or numbers of thousands of digits."
        )
    return JSONResponse(
        error_body(code, detail, request_id_of(request)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Anything unexpected: log the traceback, answer 500 without internals. A database that
    cannot be reached is not a bug: 503 `database_unavailable` with Retry-After."""
    if is_database_outage(exc):
        log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
        outage = DatabaseUnavailable()
        request_id = request_id_of(request)
        return JSONResponse(
            error_body(outage.code, outage.detail, request_id),
            status_code=outage.status_code,
            headers={
                **(outage.headers or {}),
                **({"X-Request-ID": request_id} if request_id else {}),
            },
        )
    log.exception("unhandled_error", path=request.url.path, method=request.method)
    request_id = request_id_of(request)
    # Starlette answers this one outside every middleware, so the id header is set here.
    return JSONResponse(
        error_body(
            "internal_error",
            "Something went wrong on our side; the error was logged with this request id.",
            request_id,
        ),
        status_code=500,
        headers={"X-Request-ID": request_id} if request_id else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(MAIError, mai_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    # Database outages surface as driver, SQLAlchemy or socket errors; handled here (inside the
    # exception middleware) they answer 503 without being re-raised to the server as a crash.
    from asyncpg.exceptions import InterfaceError, PostgresError
    from sqlalchemy.exc import SQLAlchemyError

    for outage_type in (
        SQLAlchemyError,
        PostgresError,
        InterfaceError,
        OSError,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(outage_type, unhandled_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
