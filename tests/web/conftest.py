"""Browser tests: a failing test's report ends with what its `mai serve` logged."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.real_server import SERVER_LOGS

LOG_LINES = 150


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the last lines of the test's server log to a failed test's report."""
    report = yield
    base = getattr(item, "funcargs", {}).get("base")
    if report.failed and isinstance(base, str) and base in SERVER_LOGS:
        lines = SERVER_LOGS[base].read_text(errors="replace").splitlines()[-LOG_LINES:]
        report.sections.append((f"mai serve log (last {LOG_LINES} lines)", "\n".join(lines)))
    return report
