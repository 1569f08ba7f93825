"""Schemas of /api/v1/tools."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ToolOut(BaseModel):
    """One tool: where it comes from, its arguments, its approval flag and whether it is on."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    description: str
    source: str = Field(description='"builtin", or "mcp:<server>" for an MCP server\'s tool')
    server: str | None = Field(description="The MCP server, for its tools")
    schema_: dict[str, Any] = Field(alias="schema", description="JSON schema of the arguments")
    requires_approval: bool
    enabled: bool = Field(description="Switched on (by configuration and by the admins)")
    available: bool = Field(description="False while the tool's MCP server is down")
    disabled_reason: str | None = None


class ToolListOut(BaseModel):
    """The tools the caller can use (every tool for an admin)."""

    data: list[ToolOut]


class ToolSwitchIn(BaseModel):
    """Switch a tool, or every tool of an MCP server, on or off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool


class ToolSwitchOut(BaseModel):
    """The switch as it is now and the tools it covers."""

    name: str = Field(description='The tool, or "mcp:<server>" for a whole server')
    kind: Literal["tool", "server"]
    enabled: bool
    tools: list[ToolOut]
