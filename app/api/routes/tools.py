"""/tools: the tools the caller's agents can use, and admins' runtime switches."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends

from app.api.deps import AdminUser, KeyOrTokenUser, ResourcesDep
from app.api.schemas.tools import ToolListOut, ToolOut, ToolSwitchIn, ToolSwitchOut
from app.services.tools import SERVER_PREFIX, ToolInfo, ToolService

router = APIRouter(prefix="/api/v1/tools", tags=["tools"])


def get_tool_service(resources: ResourcesDep) -> ToolService:
    """Tool listing and switching."""
    return ToolService(resources)


ToolServiceDep = Annotated[ToolService, Depends(get_tool_service)]


def _out(info: ToolInfo) -> ToolOut:
    return ToolOut.model_validate(asdict(info))


@router.get("")
async def list_tools(user: KeyOrTokenUser, tools: ToolServiceDep) -> ToolListOut:
    """Built-in and MCP tools with their argument schema, source and approval flag: the ones
    you can use now (admins see every tool, switched off or with its server down)."""
    return ToolListOut(data=[_out(info) for info in tools.visible(user)])


@router.patch("/{name}")
async def switch_tool(
    name: str, body: ToolSwitchIn, admin: AdminUser, tools: ToolServiceDep
) -> ToolSwitchOut:
    """Switch a tool, or every tool of an MCP server (its name, or `mcp:<server>`), on or off
    for every run from now on; kept across restarts. 404 for an unknown name."""
    key, infos = await tools.set_enabled(name, body.enabled, admin)
    return ToolSwitchOut(
        name=key,
        kind="server" if key.startswith(SERVER_PREFIX) else "tool",
        enabled=body.enabled,
        tools=[_out(info) for info in infos],
    )
