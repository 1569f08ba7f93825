"""promtool checks the Prometheus config, the alert rules and their unit tests."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from app.core import metrics
from tests.observability.tooling import PROMETHEUS_DIR, promtool, run


def test_config_is_valid(tmp_path: Path) -> None:
    # The scrape token file is written at container start; give promtool one to find.
    token = tmp_path / ".metrics_token"
    token.write_text("")
    config = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    assert "/prometheus/.metrics_token" in config
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/prometheus/.metrics_token", str(token))
    )
    shutil.copy(PROMETHEUS_DIR / "alerts.yml", tmp_path / "alerts.yml")
    result = run([promtool(), "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_rules_are_valid() -> None:
    result = run([promtool(), "check", "rules", str(PROMETHEUS_DIR / "alerts.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    result = run([promtool(), "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_required_alert_exists_and_is_unit_tested() -> None:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts >= {
        "MAIDown",
        "MAIHighErrorRate",
        "MAISlowRequests",
        "MAILLMErrors",
        "MAIApprovalBacklog",
        "MAIIngestionFailures",
    }
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert tested == alerts


def test_alerts_use_only_metrics_mai_defines() -> None:
    defined = {
        collector._name  # type: ignore[attr-defined]
        for collector in vars(metrics).values()
        if hasattr(collector, "_name") and hasattr(collector, "_type")
    }
    text = (PROMETHEUS_DIR / "alerts.yml").read_text()
    used = set(re.findall(r"\b(mai_[a-z_]+?)(?:_bucket|_count|_sum)?\{", text))
    assert used, "no mai_ metric found in alerts.yml"
    # Counters are exposed with a _total suffix the client adds to the defined name.
    exposed = defined | {f"{name}_total" for name in defined}
    assert used <= exposed, used - exposed
