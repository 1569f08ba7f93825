"""The one exception handler family: every error leaves as {error, detail, request_id}.

Under the OpenAI-compatible prefix (`/v1/`) the same errors leave in OpenAI's shape instead
(`{"error": {"message", "type", "param", "code"}}`), with the same status codes, because the
OpenAI SDKs and chat front ends only read that one.
"""

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


OPENAI_PREFIX = "/v1/"

# OpenAI's error `type` per status; anything else on our side is a server_error.
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


def is_openai_path(request: Request) -> bool:
    """Whether the request is one of the OpenAI-compatible API's."""
    return request.url.path.startswith(OPENAI_PREFIX)


def openai_error_body(
    status: int, code: str, message: str, param: str | None = None
) -> dict[str, Any]:
    """An error in OpenAI's shape."""
    return {
        "error": {
            "message": message,
            "type": _OPENAI_TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }


def error_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    meta: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    param: str | None = None,
) -> JSONResponse:
    """The error as JSON in the shape the request's API speaks (`param`: the request field at
    fault, which only OpenAI's shape names; a MAIError names it as `meta["param"]`)."""
    if is_openai_path(request):
        named = param or (meta.get("param") if meta else None)
        body = openai_error_body(status, code, detail, str(named) if named else None)
    else:
        body = error_body(code, detail, request_id_of(request), meta)
    return JSONResponse(body, status_code=status, headers=headers)


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
    return error_response(
        request, exc.status_code, exc.code, exc.detail, meta=exc.meta, headers=exc.headers
    )


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Pydantic request validation → 422 in the one shape, naming the fields."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(
            request, 400, "invalid_json", "The request body is not valid JSON; send a JSON object."
        )
    fields = [".".join(str(p) for p in e.get("loc", ())) for e in errors]
    first = [str(p) for p in errors[0].get("loc", ()) if p != "body"] if errors else []
    return error_response(
        request,
        422,
        "validation_error",
        _describe_validation(errors),
        meta={"fields": fields},
        param=".".join(first) or None,
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
    return error_response(
        request, exc.status_code, code, detail, headers=getattr(exc, "headers", None)
    )


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Anything unexpected: log the traceback, answer 500 without internals. A database that
    cannot be reached is not a bug: 503 `database_unavailable` with Retry-After."""
    if is_database_outage(exc):
        log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
        outage = DatabaseUnavailable()
        request_id = request_id_of(request)
        return error_response(
            request,
            outage.status_code,
            outage.code,
            outage.detail,
            headers={
                **(outage.headers or {}),
                **({"X-Request-ID": request_id} if request_id else {}),
            },
        )
    log.exception("unhandled_error", path=request.url.path, method=request.method)
    request_id = request_id_of(request)
    # Starlette answers this one outside every middleware, so the id header is set here.
    return error_response(
        request,
        500,
        "internal_error",
        "Something went wrong on our side; the error was logged with this request id.",
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
