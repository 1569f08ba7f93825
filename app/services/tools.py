"""The tools a run is offered: built-ins, MCP servers' tools while they are up, minus what an
admin switched off; listing them and switching them at runtime; the MCP connections' start."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from app.core.errors import NotFound
from app.core.logging import get_logger
from app.core.resources import Resources
from app.models import User
from app.repositories.tool_settings import ToolSettingRepository
from graphs.tools import ToolRegistry, ToolSpec
from graphs.tools.mcp import McpServer
from graphs.tools.mcp_config import load_mcp_servers

log = get_logger(__name__)

SERVER_PREFIX = "mcp:"


def _switched_off(spec: ToolSpec, disabled: frozenset[str]) -> bool:
    return spec.name in disabled or spec.source in disabled


def current_registry(resources: Resources) -> ToolRegistry | None:
    """The tools a run starting now may use: the built-ins and the tools of every MCP server
    that is up, those an admin switched off kept but disabled."""
    base = resources.tool_registry
    if base is None:
        return None
    specs = [spec for server in resources.mcp_servers for spec in server.specs()]
    registry = base.extended(*specs) if specs else base
    disabled = resources.disabled_tools
    off = [spec.name for spec in registry if _switched_off(spec, disabled)]
    return registry.without(*off) if off else registry


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """One tool as GET /api/v1/tools shows it."""

    name: str
    description: str
    source: str
    server: str | None
    schema: dict[str, Any]
    requires_approval: bool
    enabled: bool
    available: bool
    disabled_reason: str | None


class ToolService:
    """Listing tools and switching them; stateless, one per request is fine."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def _approval(self, spec: ToolSpec) -> bool:
        settings = self.resources.settings
        if spec.name in settings.approval_required_tools:
            return True
        if spec.name in settings.approval_exempt_tools:
            return False
        return spec.requires_approval

    def _server(self, name: str) -> McpServer | None:
        return next((s for s in self.resources.mcp_servers if s.name == name), None)

    def _info(self, spec: ToolSpec) -> ToolInfo:
        server = spec.source.removeprefix(SERVER_PREFIX) if spec.source != "builtin" else None
        mcp = self._server(server) if server is not None else None
        switched = _switched_off(spec, self.resources.disabled_tools)
        if switched:
            reason: str | None = "disabled by an admin"
        elif mcp is not None and not mcp.up:
            reason = f"the MCP server {server} is down: {mcp.error or 'not connected'}"
        else:
            reason = spec.disabled_reason
        return ToolInfo(
            name=spec.name,
            description=spec.description,
            source=spec.source,
            server=server,
            schema=spec.json_schema(),
            requires_approval=self._approval(spec),
            enabled=spec.enabled and not switched,
            available=mcp is None or mcp.up,
            disabled_reason=None
            if (spec.enabled and not switched and (mcp is None or mcp.up))
            else reason,
        )

    def _all(self) -> list[ToolSpec]:
        base = self.resources.tool_registry
        specs = list(base) if base is not None else []
        for server in self.resources.mcp_servers:
            specs.extend(server.known)
        return specs

    def visible(self, caller: User) -> list[ToolInfo]:
        """Every tool for an admin; the tools the caller can use now for anyone else."""
        infos = [self._info(spec) for spec in self._all()]
        if caller.is_admin:
            return infos
        return [info for info in infos if info.enabled and info.available]

    def _target(self, name: str) -> tuple[str, list[ToolSpec]]:
        """The switch a name means (a tool, or `mcp:<server>` for a server) and its tools."""
        specs = self._all()
        tool = next((spec for spec in specs if spec.name == name), None)
        if tool is not None:
            return name, [tool]
        server = self._server(name.removeprefix(SERVER_PREFIX))
        if server is not None:
            key = SERVER_PREFIX + server.name
            return key, [spec for spec in specs if spec.source == key]
        raise NotFound(
            f"No tool or MCP server named {name!r}; GET /api/v1/tools lists them.",
            code="tool_not_found",
        )

    async def set_enabled(
        self, name: str, enabled: bool, admin: User
    ) -> tuple[str, list[ToolInfo]]:
        """Switch a tool or a whole MCP server on or off, kept across restarts; the switch's
        name and the tools it covers, as they are now."""
        key, specs = self._target(name)
        async with self.resources.sessionmaker() as session:
            await ToolSettingRepository(session).set(
                key, enabled, admin.id, self.resources.clock.now()
            )
            await session.commit()
        disabled = set(self.resources.disabled_tools)
        if enabled:
            disabled.discard(key)
        else:
            disabled.add(key)
        self.resources.disabled_tools = frozenset(disabled)
        log.info("tool_switched", tool=key, enabled=enabled, by=str(admin.id))
        return key, [self._info(spec) for spec in specs]


async def load_switches(resources: Resources) -> None:
    """Read the admins' switches from the database into the resources."""
    async with resources.sessionmaker() as session:
        resources.disabled_tools = await ToolSettingRepository(session).disabled()


async def _refresh_switches(resources: Resources, interval: float) -> None:
    """Keep this process's switches in step with a PATCH another process took."""
    while True:
        await asyncio.sleep(interval)
        try:
            await load_switches(resources)
        except Exception:
            log.warning("tool_switches_refresh_failed", exc_info=True)


async def start_tools(resources: Resources) -> None:
    """Load the admins' switches and connect to the MCP servers of MAI_MCP_SERVERS_FILE.

    A server that is down at start does not stop it: it is reported on /health and retried in
    the background; its tools are offered once it is up. Connections close at shutdown.
    """
    settings = resources.settings
    stack = resources.exit_stack
    await load_switches(resources)
    refresher = asyncio.create_task(
        _refresh_switches(resources, settings.mcp_ping_seconds), name="tool-switches"
    )

    async def stop_refresher() -> None:
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)

    stack.push_async_callback(stop_refresher)
    if settings.mcp_servers_file is None:
        return
    servers = [
        McpServer(
            config,
            retry_seconds=settings.mcp_retry_seconds,
            ping_seconds=settings.mcp_ping_seconds,
        )
        for config in load_mcp_servers(settings.mcp_servers_file).servers
    ]
    for server in servers:
        server.start()
        stack.push_async_callback(server.stop)
    await asyncio.gather(
        *(server.first_attempt(settings.mcp_start_timeout_seconds) for server in servers)
    )
    resources.mcp_servers = servers
    for server in servers:
        if server.up:
            log.info("mcp_server_up", server=server.name, tools=[s.name for s in server.known])
        else:
            log.warning("mcp_server_down", server=server.name, error=server.error)
        if server.collisions:
            log.error(
                "mcp_tool_name_collision",
                server=server.name,
                skipped=server.collisions,
            )
