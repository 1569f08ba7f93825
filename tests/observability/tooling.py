"""Paths of the monitoring and deployment files, and the external tools their checks need."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
GRAFANA_DIR = ROOT / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
SCHEMA_TOOL_DIR = ROOT / "tools" / "grafana-schema"


def promtool() -> str:
    """The promtool binary (installed by .ci/run from Debian's `prometheus` package)."""
    path = shutil.which("promtool")
    if path is None:
        unavailable("promtool (apt-get install prometheus)")
        raise AssertionError("unreachable")
    return path


def run(args: list[str], cwd: Path = ROOT, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    """Run a checker; the caller asserts on its exit code with its output as the message."""
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
