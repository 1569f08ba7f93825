"""Grafana: dashboards match Grafana's published schema, every panel's PromQL parses, and the
provisioning points at what the dashboards use."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from app.core import metrics
from tests.conftest import unavailable
from tests.observability.tooling import DASHBOARDS_DIR, GRAFANA_DIR, SCHEMA_TOOL_DIR, promtool, run

# Grafana's built-in variables, replaced by values of the same type before promtool parses.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    # The dashboards' own template variable (agent analytics: which graphs).
    "$graph": ".*",
}
REQUIRED = {
    "system-overview.json",
    "api-performance.json",
    "agent-analytics.json",
    "infrastructure.json",
}


def _dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return [p for p in panels if p.get("type") != "row"]


def _expressions() -> list[tuple[str, str, str]]:
    found = []
    for name, dashboard in _dashboards().items():
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                found.append((name, panel["title"], target["expr"]))
    return found


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    dashboards = _dashboards()
    assert set(dashboards) >= REQUIRED
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids))
    for name, dashboard in dashboards.items():
        assert dashboard["title"].startswith("MAI / "), name
        assert _panels(dashboard), f"{name} has no panels"


def test_dashboards_match_grafana_schema() -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("node (Node.js 20)")
    if not (SCHEMA_TOOL_DIR / "node_modules" / "@grafana" / "schema").is_dir():
        unavailable("tools/grafana-schema/node_modules (cd tools/grafana-schema && npm ci)")
    assert node is not None
    result = run([node, "check-dashboards.mjs", str(DASHBOARDS_DIR)], cwd=SCHEMA_TOOL_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(_dashboards())} dashboard(s) match" in result.stdout


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    rules = []
    for index, (name, title, expr) in enumerate(_expressions()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{name} / {title}: unknown Grafana variable in {expr}"
        rules.append({"record": f"dashboard:check:{index}", "expr": expr})
    assert len(rules) >= 40
    rules_file = tmp_path / "dashboard_queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = run([promtool(), "check", "rules", str(rules_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_panels_use_the_provisioned_data_source_and_defined_metrics() -> None:
    datasources = yaml.safe_load(
        (GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text()
    )
    uids = {d["uid"] for d in datasources["datasources"] if d["type"] == "prometheus"}
    defined = {
        collector._name  # type: ignore[attr-defined]
        for collector in vars(metrics).values()
        if hasattr(collector, "_name") and hasattr(collector, "_type")
    }
    exposed = defined | {f"{name}_total" for name in defined}
    for name, dashboard in _dashboards().items():
        for panel in _panels(dashboard):
            assert panel["datasource"]["uid"] in uids, f"{name} / {panel['title']}"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids
                used = set(
                    re.findall(r"\b(mai_[a-z_]+?)(?:_bucket|_count|_sum)?\{", target["expr"])
                )
                assert used <= exposed, f"{name} / {panel['title']}: {used - exposed}"


def test_dashboard_provider_points_at_the_mounted_folder() -> None:
    provider = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/mai.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((GRAFANA_DIR.parent / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert any(v.startswith("./grafana/dashboards:") and v.split(":")[1] == path for v in volumes)
