"""The tool settings: MAI_WEB_SEARCH_*, MAI_API_TOOLS_FILE, timeouts and the cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import ConfigError, load_settings


def test_tool_defaults_and_empty_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROVIDER", "URL", "API_KEY"):
        monkeypatch.setenv(f"MAI_WEB_SEARCH_{name}", "")
    monkeypatch.setenv("MAI_API_TOOLS_FILE", "")
    settings = load_settings()
    assert settings.web_search_provider is None
    assert settings.web_search_url is None
    assert settings.web_search_api_key is None
    assert settings.api_tools_file is None
    assert settings.tool_timeout_seconds == 30.0
    assert settings.max_tool_iterations == 8


def test_tool_values_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    apis = tmp_path / "apis.yaml"
    apis.write_text(
        "apis:\n  - name: crm\n    base_url: http://crm.local\n"
        "    allow:\n      - methods: [GET]\n        paths: [/contacts/*]\n"
    )
    monkeypatch.setenv("MAI_WEB_SEARCH_PROVIDER", "SearXNG")
    monkeypatch.setenv("MAI_WEB_SEARCH_URL", "http://searxng:8080/")
    monkeypatch.setenv("MAI_API_TOOLS_FILE", str(apis))
    monkeypatch.setenv("MAI_TOOL_TIMEOUT_SECONDS", "12.5")
    monkeypatch.setenv("MAI_MAX_TOOL_ITERATIONS", "3")
    settings = load_settings()
    assert settings.web_search_provider == "searxng"
    assert settings.web_search_url == "http://searxng:8080"
    assert settings.api_tools_file == apis
    assert settings.tool_timeout_seconds == 12.5
    assert settings.max_tool_iterations == 3


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MAI_WEB_SEARCH_PROVIDER", "bing", "MAI_WEB_SEARCH_PROVIDER"),
        ("MAI_WEB_SEARCH_URL", "searxng:8080", "MAI_WEB_SEARCH_URL: must be an http"),
        ("MAI_API_TOOLS_FILE", "/nonexistent/apis.yaml", "MAI_API_TOOLS_FILE: /nonexistent"),
        ("MAI_TOOL_TIMEOUT_SECONDS", "0", "MAI_TOOL_TIMEOUT_SECONDS"),
        ("MAI_MAX_TOOL_ITERATIONS", "0", "MAI_MAX_TOOL_ITERATIONS"),
    ],
)
def test_bad_tool_settings_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_an_invalid_api_file_is_reported_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    apis = tmp_path / "apis.yaml"
    apis.write_text("apis:\n  - name: crm\n    base_url: http://crm.local\n    allow: []\n")
    monkeypatch.setenv("MAI_API_TOOLS_FILE", str(apis))
    with pytest.raises(ConfigError, match=r"MAI_API_TOOLS_FILE: .*apis.0.allow"):
        load_settings()
