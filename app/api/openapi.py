"""The OpenAPI schema tells the truth about errors, in one place.

Every failure MAI answers has the one JSON shape {error, detail, request_id, meta?} (see
app.api.errors). FastAPI documents only its own 422 shape, so the generated schema is
post-processed once: the `Error` schema is added and each operation gets the error responses
it can give, derived from what the operation is (signed-in or not, path parameters, a request
body, an upload, a state-changing method) and from the middleware every request passes
through (NUL guard, body limits, readiness). Routes keep no per-route error boilerplate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every error MAI answers, whatever the status.",
    "required": ["error", "detail", "request_id"],
    "properties": {
        "error": {"type": "string", "description": "A stable machine-readable code"},
        "detail": {"type": "string", "description": "What went wrong and what to do"},
        "request_id": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "Echoes the X-Request-ID header; quote it when reporting",
        },
        "meta": {"type": "object", "additionalProperties": True},
    },
}

OPENAI_ERROR_SCHEMA: dict[str, Any] = {
    "title": "OpenAIError",
    "type": "object",
    "description": "Errors of the OpenAI-compatible API under /v1, in OpenAI's own shape.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    },
}
# What the OpenAI-compatible routes can answer besides success (every one takes a token).
_OPENAI_CODES = {"400", "401", "403", "404", "408", "409", "413", "422", "429", "503"}

DESCRIPTIONS = {
    "400": "Bad request: the body is not valid JSON, is nested too deep, holds NUL characters, "
    "or breaks a rule of this operation (the code says which)",
    "401": "Not signed in: the access token (or the credentials) are missing, wrong, expired "
    "or revoked",
    "403": "Not allowed: the admin role is needed, the account is disabled, or the server's "
    "settings forbid it",
    "404": "Not found, or not yours to see",
    "408": "The request body did not arrive within MAI_REQUEST_READ_TIMEOUT_SECONDS",
    "409": "Conflicts with the current state (taken email, duplicate, a run in progress)",
    "413": "The body is over MAI_MAX_BODY_BYTES (uploads: MAI_KB_MAX_UPLOAD_MB)",
    "415": "The content type is not accepted here",
    "422": "The input failed validation; meta.fields names the fields",
    "429": "A rate limit, budget, lockout or stream cap was reached; see Retry-After",
    "503": "MAI is starting or stopping, or a service it needs is down; retry later",
}

_MUTATING = {"post", "put", "patch", "delete"}
# Operations without a bearer token that still have errors of their own.
_EXTRA_ERRORS: dict[tuple[str, str], set[str]] = {
    ("get", "/metrics"): {"401"},  # when MAI_METRICS_TOKEN is set
    ("post", "/api/v1/auth/register"): {"403", "409", "429"},
    ("post", "/api/v1/auth/login"): {"401", "429"},
    ("post", "/api/v1/auth/refresh"): {"401", "403"},
}
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_LANGGRAPH_PREFIXES = ("/assistants", "/threads", "/runs", "/store")


def error_codes(path: str, method: str, operation: dict[str, Any]) -> set[str]:
    """The error statuses an operation can answer."""
    codes = {"400"}  # the NUL guard checks the path and query string of every request
    parameters = operation.get("parameters", [])
    body = operation.get("requestBody")
    if path.startswith("/v1/"):
        return set(_OPENAI_CODES)
    langgraph = path.startswith(_LANGGRAPH_PREFIXES)
    if langgraph:
        # The LangGraph Server API: signed in by API key or token, ids in paths and bodies.
        codes |= {"401", "403", "404", "409", "422", "429"}
    if not path.startswith("/api/") and not langgraph:
        return codes | _EXTRA_ERRORS.get((method, path), set())
    codes.add("503")  # not ready while starting or stopping
    if parameters or body:
        codes.add("422")
    if any(p.get("in") == "path" for p in parameters):
        codes.add("404")
    if body:
        codes |= {"408", "413"}
        if any(kind.startswith("multipart/") for kind in body.get("content", {})):
            codes.add("415")
    if operation.get("security"):
        codes |= {"401", "403", "429"}
        if method in _MUTATING:
            codes.add("409")
        if body:
            codes.add("404")  # a body can name a conversation, document or message
    codes |= _EXTRA_ERRORS.get((method, path), set())
    return codes


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the Error schema and every operation's error responses to a generated schema."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["OpenAIError"] = OPENAI_ERROR_SCHEMA
    for path, item in schema.get("paths", {}).items():
        shape = "OpenAIError" if path.startswith("/v1/") else "Error"
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}}
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in sorted(error_codes(path, method, operation)):
                responses[code] = {"description": DESCRIPTIONS[code], "content": content}
            if "422" in responses and "422" not in error_codes(path, method, operation):
                responses["422"]["content"] = content
    if "#/components/schemas/HTTPValidationError" not in json.dumps(schema.get("paths", {})):
        for name in _VALIDATION_SCHEMAS:
            schemas.pop(name, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make the app serve the schema with its error responses documented."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
