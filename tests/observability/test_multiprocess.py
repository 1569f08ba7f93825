"""Multiprocess metrics: several processes write to one directory, a scrape merges them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.observability.promtext import parse, series, value

ROOT = Path(__file__).resolve().parents[2]

_WRITER = """
from app.core import metrics
metrics.record_run("assistant", "success")
metrics.record_tokens("mp-model", 10, 4)
metrics.set_approvals_pending({pending})
metrics.DB_POOL_IN_USE.set(2)
metrics.mark_process_exited()
"""

_READER = """
import sys
from app.core import metrics
sys.stdout.write(metrics.render_latest().decode())
"""


def _python(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return environ | extra


def test_two_writer_processes_are_merged(tmp_path: Path) -> None:
    env = _env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    _python(_WRITER.format(pending=5), env)
    _python(_WRITER.format(pending=1), env)
    samples = parse(_python(_READER, env))
    # Counters add up over processes.
    assert value(samples, "mai_agent_runs_total", graph="assistant", status="success") == 2
    assert (
        value(
            samples, "mai_llm_tokens_total", model="mp-model", direction="input", graph="assistant"
        )
        == 20
    )
    assert (
        value(
            samples, "mai_llm_tokens_total", model="mp-model", direction="output", graph="assistant"
        )
        == 8
    )
    # "mostrecent": the value written last wins, not the sum of both workers' reads.
    assert value(samples, "mai_approvals_pending") == 1
    # "livesum": the writers shut down, so their pool connections no longer count.
    assert value(samples, "mai_db_pool_connections_in_use") == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_with_two_workers_merges_their_metrics(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(
        MAI_DATA_DIR=str(tmp_path / "data"),
        MAI_LLM_BASE_URL="http://127.0.0.1:9/v1",
        # Several workers refuse the embedded Qdrant store (it opens in one process only); this
        # test is about metrics, so a Qdrant server that is down (KB unavailable) will do.
        MAI_QDRANT_URL="http://127.0.0.1:9",
        MAI_LOG_LEVEL="WARNING",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        with httpx.Client(base_url=base, timeout=5) as http:
            while True:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                try:
                    if http.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "mai serve did not become ready"
                time.sleep(0.5)
            # New connections each time, so both workers take some of the requests.
            for _ in range(20):
                with httpx.Client(base_url=base, timeout=5) as fresh:
                    assert fresh.get("/ready").status_code == 200
            totals = set()
            for _ in range(4):
                with httpx.Client(base_url=base, timeout=5) as fresh:
                    samples = parse(fresh.get("/metrics").text)
                totals.add(
                    value(
                        samples,
                        "mai_http_requests_total",
                        handler="/ready",
                        method="GET",
                        status="2xx",
                    )
                )
        # Whichever worker answered the scrape, it reported every worker's requests.
        assert min(totals) >= 20
        # And the CPU and memory of both workers, one series each.
        memory = series(samples, "process_resident_memory_bytes")
        assert len({labels["pid"] for labels in memory}) == 2
        assert value(samples, "process_resident_memory_bytes", pid=memory[0]["pid"]) > 10e6
        assert series(samples, "process_cpu_seconds_total")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
