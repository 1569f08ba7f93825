"""The `http_api` tool: calls the HTTP APIs declared in the YAML file named by MAI_API_TOOLS_FILE.

The file declares each API once; the model can reach nothing else:

    apis:
      - name: inventory                 # what the model passes as `api`
        description: Stock levels by SKU
        base_url: https://inventory.internal/api
        auth:                            # optional: a header whose value comes from the env
          header: Authorization
          env: INVENTORY_TOKEN
          prefix: "Bearer "
        allow:                           # method + path patterns; '*' is one path segment,
          - methods: [GET]               # '**' any number of segments
            paths: [/items, /items/*]
          - methods: [POST]
            paths: [/items/*/reservations]
        timeout_seconds: 10              # optional

A call with a method or path outside `allow` is refused with a message naming what is allowed.
Redirects are not followed, so a call never leaves the declared base URL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from graphs.tools.config import ToolConfig
from graphs.tools.http import http_client, transport_failure
from graphs.tools.registry import (
    ToolConfigError,
    ToolContext,
    ToolError,
    ToolRetry,
    ToolSpec,
    TransientToolError,
)

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
SAFE_METHODS = frozenset({"GET", "HEAD"})
RESPONSE_CHARS = 4000


class ApiAuth(BaseModel):
    """A header whose value is read from an environment variable at call time."""

    model_config = ConfigDict(extra="forbid")

    header: str = Field(min_length=1, pattern=r"^[A-Za-z0-9-]+$")
    env: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    prefix: str = ""


class ApiRule(BaseModel):
    """Methods allowed on a set of path patterns."""

    model_config = ConfigDict(extra="forbid")

    methods: list[Method] = Field(min_length=1)
    paths: list[str] = Field(min_length=1)

    @field_validator("methods", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        if isinstance(value, list):
            return [m.upper() if isinstance(m, str) else m for m in value]
        return value

    @field_validator("paths")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern.startswith("/"):
                raise ValueError(f"path pattern {pattern!r} must start with '/'")
            if any(part in (".", "..") for part in pattern.split("/")):
                raise ValueError(f"path pattern {pattern!r} must not contain '.' or '..'")
        return value


class ApiDefinition(BaseModel):
    """One declared API."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    description: str = ""
    base_url: str
    auth: ApiAuth | None = None
    allow: list[ApiRule] = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float | None = Field(default=None, gt=0, le=600)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url {value!r} must be an http:// or https:// URL")
        if url.query or url.fragment:
            raise ValueError(f"base_url {value!r} must not have a query or fragment")
        return value.rstrip("/")

    def allowed(self) -> str:
        """What this API allows, for the model and for refusals."""
        return "; ".join(
            f"{', '.join(rule.methods)} {', '.join(rule.paths)}" for rule in self.allow
        )


class ApiToolsFile(BaseModel):
    """The whole YAML file."""

    model_config = ConfigDict(extra="forbid")

    apis: list[ApiDefinition] = Field(default_factory=list)

    @field_validator("apis")
    @classmethod
    def _unique(cls, value: list[ApiDefinition]) -> list[ApiDefinition]:
        names = [api.name for api in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"API names must be unique; repeated: {', '.join(duplicates)}")
        return value


def load_api_definitions(path: Path | str) -> list[ApiDefinition]:
    """Read and validate the API file; ToolConfigError says what is wrong and where."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ToolConfigError(f"MAI_API_TOOLS_FILE: {file} does not exist") from None
    except (OSError, yaml.YAMLError) as error:
        raise ToolConfigError(f"MAI_API_TOOLS_FILE: cannot read {file}: {error}") from None
    try:
        return ApiToolsFile.model_validate(raw or {}).apis
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise ToolConfigError(
            f"MAI_API_TOOLS_FILE: {file}: {where}: {first.get('msg', 'invalid')}"
        ) from None


def _compile(pattern: str) -> re.Pattern[str]:
    parts = []
    for segment in pattern.strip("/").split("/"):
        if segment == "**":
            parts.append("(?:/[^/]+)*")
        else:
            parts.append("/" + "[^/]+".join(re.escape(piece) for piece in segment.split("*")))
    body = "".join(parts) if pattern != "/" else "/"
    return re.compile(f"^{body}/?$" if body != "/" else "^/$")


class HttpApiArgs(BaseModel):
    """Arguments of the http_api tool."""

    api: str = Field(description="The name of a declared API.")
    method: str = Field(default="GET", description="HTTP method, e.g. GET or POST.")
    path: str = Field(
        min_length=1, max_length=2000, description="Path under the API's base URL, e.g. /items/42."
    )
    query: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Query-string parameters."
    )
    body: dict[str, Any] | list[Any] | None = Field(
        default=None, description="JSON body for POST, PUT or PATCH."
    )


class _Api:
    """A declared API with its rules compiled."""

    def __init__(self, definition: ApiDefinition) -> None:
        self.definition = definition
        self.rules = [
            (frozenset(rule.methods), [_compile(p) for p in rule.paths])
            for rule in definition.allow
        ]

    def permits(self, method: str, path: str) -> bool:
        """Whether some rule allows `method` on `path`."""
        return any(
            method in methods and any(p.match(path) for p in patterns)
            for methods, patterns in self.rules
        )

    def knows_path(self, path: str) -> bool:
        """Whether some rule names `path` (for any method): tells a bad method from a bad path."""
        return any(p.match(path) for _, patterns in self.rules for p in patterns)


def _clean_path(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    if "?" in path or "#" in path:
        raise ToolError("Put query parameters in `query`, not in the path.")
    decoded = unquote(path)
    if "\\" in decoded or any(part in (".", "..") for part in decoded.split("/")):
        raise ToolError(f"The path {path!r} is not allowed ('.' and '..' segments are refused).")
    if "//" in path:
        raise ToolError(f"The path {path!r} is not allowed (empty segment).")
    return path


def _render(response: httpx.Response) -> str:
    kind = response.headers.get("content-type", "")
    text = response.text
    if "json" in kind:
        try:
            text = json.dumps(response.json(), ensure_ascii=False, indent=1)
        except ValueError:
            text = response.text
    if len(text) > RESPONSE_CHARS:
        text = text[:RESPONSE_CHARS] + f"\n… ({len(response.text)} characters, truncated)"
    head = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    return f"{head}\n{text}" if text else head


def _describe(definitions: Sequence[ApiDefinition]) -> str:
    lines = [
        "Call one of these declared HTTP APIs (only the listed methods and paths are allowed; "
        "'*' is one path segment, '**' any number):"
    ]
    for api in definitions:
        about = f": {api.description}" if api.description else ""
        lines.append(f"- {api.name}{about}. Allowed: {api.allowed()}.")
    return "\n".join(lines)


def http_api_tool(config: ToolConfig) -> ToolSpec:
    """The http_api tool spec; enabled when MAI_API_TOOLS_FILE declares at least one API."""
    definitions = (
        load_api_definitions(config.api_tools_file) if config.api_tools_file is not None else []
    )
    apis = {d.name: _Api(d) for d in definitions}

    async def run(args: Any, context: ToolContext) -> str:
        api = apis.get(args.api)
        if api is None:
            known = ", ".join(apis) or "none"
            raise ToolError(f"Unknown API {args.api!r}. Declared APIs: {known}.")
        definition = api.definition
        method = str(args.method).upper()
        path = _clean_path(str(args.path))
        if not api.permits(method, path):
            what = "path" if not api.knows_path(path) else "method"
            raise ToolError(
                f"Refused: {method} {path} is not allowed for API {definition.name!r} "
                f"(this {what} is not declared). Allowed: {definition.allowed()}."
            )
        if args.body is not None and method not in ("POST", "PUT", "PATCH"):
            raise ToolError(f"A {method} request cannot carry a body.")
        headers = dict(definition.headers)
        if definition.auth is not None:
            secret = os.environ.get(definition.auth.env)
            if not secret:
                raise ToolError(
                    f"API {definition.name!r} needs the environment variable "
                    f"{definition.auth.env}, which is not set on the server."
                )
            headers[definition.auth.header] = definition.auth.prefix + secret
        timeout = definition.timeout_seconds or config.tool_timeout_seconds
        what = f"API {definition.name!r}"
        async with http_client(config) as client:
            try:
                response = await client.request(
                    method,
                    definition.base_url + path,
                    params={
                        k: str(v).lower() if isinstance(v, bool) else v
                        for k, v in args.query.items()
                    },
                    json=args.body,
                    headers=headers,
                    timeout=timeout,
                    follow_redirects=False,
                )
            except httpx.HTTPError as error:
                failure = transport_failure(what, error)
                if method in SAFE_METHODS:
                    raise failure from error
                raise ToolError(str(failure)) from error
        text = _render(response)
        if response.is_success or response.is_redirect:
            return text
        if (response.status_code == 429 or response.status_code >= 500) and (
            method in SAFE_METHODS
        ):
            raise TransientToolError(f"{what} failed: {text}")
        raise ToolError(f"{what} failed: {text}")

    return ToolSpec(
        name="http_api",
        description=_describe(definitions) if definitions else "Call a declared HTTP API.",
        args_schema=HttpApiArgs,
        coroutine=run,
        category="api",
        enabled=bool(definitions),
        disabled_reason=None if definitions else "MAI_API_TOOLS_FILE is not set or declares no API",
        timeout_seconds=None,
        retry=ToolRetry(max_attempts=2, backoff_seconds=0.5),
        # Declared APIs may write: a call is made once per tool call id across re-runs.
        side_effects=True,
    )
