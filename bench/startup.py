"""How long a `mai` command takes from a cold process: `mai --help`, and `mai serve` until
GET /ready answers 200 (embedded default, fresh data dir, already migrated).

Each figure is the median of N cold processes (default 5), run one after another. The baseline,
measured in the same run, is a bare `python -c pass`: the ratio says what MAI adds on top of
starting the interpreter, so the figures can be compared across machines and loads. Also prints
the CPU seconds of the `mai --help` process (user + system), which a loaded machine does not
inflate as much as the wall clock. Targets: `mai --help` < 1 s, `mai serve` ready < 3 s.

    uv run python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _environ(data_dir: Path, port: int) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    return environ | {
        "MAI_DATA_DIR": str(data_dir),
        "MAI_PORT": str(port),
        "MAI_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def timed_command(args: list[str], environ: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one process running to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, env=environ, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_until_ready(data_dir: Path) -> tuple[float, float]:
    """Seconds from spawning `mai serve` to its first 200 from GET /ready, and the CPU
    seconds the server process had used by then."""
    port = _free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        env=_environ(data_dir, port),
        cwd=data_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"mai serve exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as reply:
                    if reply.status == 200:
                        return time.perf_counter() - started, _cpu_seconds(process.pid)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    """Measure and print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="mai-bench-startup-") as folder:
        data_dir = Path(folder) / "data"
        environ = _environ(data_dir, 8000)
        mai = [sys.executable, "-m", "app.cli"]
        # Migrated once up front: the figures are about starting, not about creating tables.
        subprocess.run([*mai, "migrate"], env=environ, cwd=ROOT, check=True, capture_output=True)
        python = [timed_command([sys.executable, "-c", "pass"], environ) for _ in range(runs)]
        helps = [timed_command([*mai, "--help"], environ) for _ in range(runs)]
        serves = [serve_until_ready(data_dir) for _ in range(runs)]
    baseline = statistics.median(wall for wall, _ in python)
    help_wall = statistics.median(wall for wall, _ in helps)
    help_cpu = statistics.median(cpu for _, cpu in helps)
    serve = statistics.median(wall for wall, _ in serves)
    serve_cpu = statistics.median(cpu for _, cpu in serves)
    print(f"cold processes, median of {runs}; load average {os.getloadavg()[0]:.1f}")
    print(f"python -c pass (baseline)  {baseline:6.2f} s")
    print(
        f"mai --help                 {help_wall:6.2f} s  ({help_cpu:.2f} s CPU)  "
        f"{help_wall / baseline:5.1f}x baseline  target < 1 s"
    )
    print(
        f"mai serve -> /ready 200    {serve:6.2f} s  ({serve_cpu:.2f} s CPU)  "
        f"{serve / baseline:5.1f}x baseline  target < 3 s"
    )


if __name__ == "__main__":
    main()
