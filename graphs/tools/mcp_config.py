"""The MCP servers file (MAI_MCP_SERVERS_FILE): which MCP servers lend their tools to the agents.

    servers:
      - name: files                      # tools are offered as files__<tool>
        transport: stdio                 # stdio | streamable_http | sse
        command: python
        args: [-m, my_files_server]
        env:                             # plain values, or {env: NAME} read from MAI's env
          ROOT: /srv/files
        allow: [read_file, list_dir]     # or deny: [...]; neither: every tool
        requires_approval: true          # the default for this server's tools (true if unset)
        tools:                           # per-tool overrides
          read_file: {requires_approval: false}
        timeout_seconds: 30              # per call
        connect_timeout_seconds: 10
      - name: tickets
        transport: streamable_http
        url: https://tickets.internal/mcp
        headers:
          Authorization: {env: TICKETS_TOKEN, prefix: "Bearer "}

Everything is checked when the file is loaded: a mistake names the entry it is in.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graphs.tools.registry import ToolConfigError

SEPARATOR = "__"
# What OpenAI-compatible servers accept as a function name.
TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_MAX_OUTPUT_CHARS = 100_000


class EnvValue(BaseModel):
    """A value read from one of MAI's environment variables when the server is connected."""

    model_config = ConfigDict(extra="forbid")

    env: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    prefix: str = ""

    def resolve(self) -> str:
        """The value now; ToolConfigError when the variable is unset."""
        value = os.environ.get(self.env)
        if not value:
            raise ToolConfigError(f"the environment variable {self.env} is not set")
        return self.prefix + value


class ToolOverride(BaseModel):
    """Per-tool settings."""

    model_config = ConfigDict(extra="forbid")

    requires_approval: bool | None = None


class McpServerConfig(BaseModel):
    """One MCP server and the policy for its tools."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*(_[A-Za-z0-9-]+)*$", max_length=40)
    transport: Literal["stdio", "streamable_http", "sse"]
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str | EnvValue] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str | EnvValue] = Field(default_factory=dict)
    allow: list[str] | None = None
    deny: list[str] | None = None
    requires_approval: bool = True
    tools: dict[str, ToolOverride] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    max_output_chars: int = Field(default=DEFAULT_MAX_OUTPUT_CHARS, ge=1000)

    @model_validator(mode="after")
    def _transport_fields(self) -> McpServerConfig:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs `command`")
            if self.url or self.headers:
                raise ValueError("`url` and `headers` are for streamable_http and sse servers")
        else:
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError(f"a {self.transport} server needs an http(s) `url`")
            if self.command or self.args or self.env:
                raise ValueError("`command`, `args` and `env` are for stdio servers")
        if self.allow is not None and self.deny is not None:
            raise ValueError("use `allow` or `deny`, not both")
        return self

    def offers(self, tool: str) -> bool:
        """Whether the allow/deny lists let this server's tool through."""
        if self.allow is not None:
            return tool in self.allow
        return self.deny is None or tool not in self.deny

    def approval_for(self, tool: str) -> bool:
        """Whether a call of this tool waits for a person's approval."""
        override = self.tools.get(tool)
        if override is not None and override.requires_approval is not None:
            return override.requires_approval
        return self.requires_approval

    def tool_name(self, tool: str) -> str:
        """The registry name of this server's tool: `<server>__<tool>`, with characters a
        model API does not accept replaced by "_"."""
        return (self.name + SEPARATOR + re.sub(r"[^A-Za-z0-9_-]", "_", tool))[:64]

    def resolved_env(self) -> dict[str, str] | None:
        """The stdio server's environment: MAI's PATH and HOME plus the file's values."""
        if self.transport != "stdio":
            return None
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        for key, value in self.env.items():
            base[key] = value if isinstance(value, str) else value.resolve()
        return base

    def resolved_headers(self) -> dict[str, str]:
        """The HTTP headers, secrets read from the environment."""
        return {
            key: value if isinstance(value, str) else value.resolve()
            for key, value in self.headers.items()
        }


class McpServersFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    servers: list[McpServerConfig] = Field(default_factory=list)


def _entry_of(raw: object, location: tuple[int | str, ...]) -> str:
    """`servers[2] (name: docs)` for an error inside the third server."""
    if len(location) >= 2 and location[0] == "servers" and isinstance(location[1], int):
        index = location[1]
        name = None
        if isinstance(raw, dict) and isinstance(raw.get("servers"), list):
            servers = raw["servers"]
            if index < len(servers) and isinstance(servers[index], dict):
                name = servers[index].get("name")
        rest = ".".join(str(part) for part in location[2:])
        where = f"servers[{index}]" + (f" ({name})" if name else "")
        return where + (f".{rest}" if rest else "")
    return ".".join(str(part) for part in location) or "the file"


def parse_mcp_servers(raw: object) -> McpServersFile:
    """Validate the file's content; ToolConfigError naming the entry at fault."""
    try:
        parsed = McpServersFile.model_validate(raw if raw is not None else {})
    except ValidationError as error:
        first = error.errors()[0]
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise ToolConfigError(f"{_entry_of(raw, tuple(first['loc']))}: {message}") from None
    seen: set[str] = set()
    for index, server in enumerate(parsed.servers):
        if server.name in seen:
            raise ToolConfigError(
                f"servers[{index}] ({server.name}): another server has this name, so their "
                f"tools would collide as {server.name}{SEPARATOR}<tool>; rename one"
            )
        seen.add(server.name)
        for key, value in (*server.env.items(), *server.headers.items()):
            if isinstance(value, EnvValue) and not os.environ.get(value.env):
                raise ToolConfigError(
                    f"servers[{index}] ({server.name}).{key}: the environment variable "
                    f"{value.env} is not set"
                )
    return parsed


def load_mcp_servers(path: Path | str) -> McpServersFile:
    """Read and validate the servers file; ToolConfigError naming the entry at fault."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ToolConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ToolConfigError(f"{path} is not valid YAML{where}") from None
    return parse_mcp_servers(raw)
