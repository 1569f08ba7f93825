"""The MCP servers file: what it accepts, what it refuses (naming the entry), tool names."""

from __future__ import annotations

from typing import Any

import pytest

from graphs.tools import ToolConfigError
from graphs.tools.mcp import json_args_model, truncated
from graphs.tools.mcp_config import parse_mcp_servers


def _one(**server: Any) -> dict[str, Any]:
    return {"servers": [{"name": "docs", **server}]}


def test_a_valid_file_and_its_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCS_TOKEN", "s3cret")
    parsed = parse_mcp_servers(
        _one(
            transport="streamable_http",
            url="https://docs.internal/mcp",
            headers={"Authorization": {"env": "DOCS_TOKEN", "prefix": "Bearer "}, "X-Team": "a"},
            deny=["drop"],
            tools={"search": {"requires_approval": False}},
        )
    )
    [server] = parsed.servers
    assert server.resolved_headers() == {"Authorization": "Bearer s3cret", "X-Team": "a"}
    assert server.offers("search")
    assert not server.offers("drop")
    assert server.approval_for("search") is False
    assert server.approval_for("anything_else") is True  # MCP tools need approval by default
    assert server.tool_name("get.item/v2") == "docs__get_item_v2"


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"transport": "stdio"}, "servers[0] (docs): a stdio server needs `command`"),
        ({"transport": "sse"}, "servers[0] (docs): a sse server needs an http(s) `url`"),
        (
            {"transport": "stdio", "command": "x", "allow": ["a"], "deny": ["b"]},
            "servers[0] (docs): use `allow` or `deny`, not both",
        ),
        (
            {"transport": "stdio", "command": "x", "timeout_seconds": 0},
            "servers[0] (docs).timeout_seconds: Input should be greater than 0",
        ),
        (
            {"transport": "ftp", "url": "ftp://x"},
            "servers[0] (docs).transport: Input should be 'stdio', 'streamable_http' or 'sse'",
        ),
    ],
)
def test_mistakes_name_the_entry(server: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolConfigError) as error:
        parse_mcp_servers(_one(**server))
    assert str(error.value) == message


def test_a_server_name_with_the_separator_is_refused() -> None:
    # "a__b" would make a__b__c ambiguous with server "a"'s tool "b__c".
    with pytest.raises(ToolConfigError, match=r"servers\[0\] \(a__b\)\.name"):
        parse_mcp_servers({"servers": [{"name": "a__b", "transport": "stdio", "command": "x"}]})


def test_arguments_are_checked_against_the_json_schema() -> None:
    model = json_args_model(
        "docs__search",
        {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    )
    assert model.model_validate({"q": "x", "extra": 1}).model_dump() == {"q": "x", "extra": 1}
    with pytest.raises(ValueError, match="'q' is a required property"):
        model.model_validate({})


def test_truncation_leads_with_a_note() -> None:
    text = truncated("y" * 5000, 1000)
    assert text.startswith("[Truncated by MAI: the tool returned 5,000 characters; the first 1,000")
    assert text.endswith("y" * 1000)
    assert truncated("short", 1000) == "short"
