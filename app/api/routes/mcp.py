"""/mcp: MAI's agents for MCP clients (streamable HTTP), authenticated with a MAI API key."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.api.deps import authenticate_key_or_token
from app.api.errors import error_response
from app.core.errors import MAIError
from app.core.resources import require_ready
from app.services.auth import AuthService
from app.services.mcp_server import mcp_caller

PATH = "/mcp"


class McpEndpoint:
    """The ASGI app at /mcp: authenticates the caller, then hands the request to the MCP SDK's
    session manager (`app.state.mcp`, started at the first request)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one MCP request; 401 (MAI's error shape) without a valid key or token."""
        request = Request(scope, receive)
        try:
            resources = require_ready(getattr(request.app.state, "resources", None))
            host = request.app.state.mcp
            authorization = request.headers.get("authorization", "")
            scheme, _, token = authorization.partition(" ")
            bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
            async with resources.sessionmaker() as session:
                auth = AuthService(
                    session,
                    resources.settings,
                    resources.store,
                    resources.clock,
                    resources.rate_limiter,
                )
                user = await authenticate_key_or_token(
                    request, resources, auth, bearer, request.headers.get("x-api-key")
                )
        except MAIError as error:
            headers = dict(error.headers or {})
            if error.status_code == 401:
                headers.setdefault("WWW-Authenticate", "Bearer")
            response = error_response(
                request,
                error.status_code,
                error.code,
                error.detail,
                meta=error.meta,
                headers=headers,
            )
            await response(scope, receive, send)
            return
        caller = mcp_caller.set(user)
        try:
            await (await host.manager()).handle_request(scope, receive, send)
        finally:
            mcp_caller.reset(caller)


def install(app: FastAPI) -> None:
    """Serve /mcp (an ASGI app, so the MCP SDK answers in its own protocol)."""
    app.router.routes.append(Route(PATH, McpEndpoint(), methods=["GET", "POST", "DELETE"]))
