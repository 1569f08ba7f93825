"""A planner worker killed with SIGKILL in the middle of its parallel steps resumes elsewhere.

The finished step and the plan are not run again (counted in both processes); only the step
that was in flight and the ones after it run on resume. SQLite and PostgreSQL checkpointers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from graphs.planner import Context, builder
from tests.conftest import PostgresDatabase, unavailable
from tests.graphs.planner_support import PlannerModel, Workers
from tests.graphs.planner_worker import saver

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_killed_worker_resumes_without_rerunning_finished_steps(
    backend: str, tmp_path: Path, postgres_database: PostgresDatabase | None
) -> None:
    if backend == "sqlite":
        target = str(tmp_path / "checkpoints.db")
    else:
        if postgres_database is None:
            unavailable("PostgreSQL")
        assert postgres_database is not None
        target = postgres_database.conninfo
    thread_id = f"restart-{uuid.uuid4().hex}"
    log = tmp_path / "worker.log"
    log.touch()
    config: dict[str, Any] = {"configurable": {"thread_id": thread_id}}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.graphs.planner_worker", backend, target, thread_id, str(log)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        async with saver(backend, target) as checkpointer:
            graph = builder.compile(checkpointer=checkpointer)
            # Kill only once s1's result is durably saved and s2 is in flight.
            for _ in range(600):
                assert worker.poll() is None, "the worker exited before it was killed"
                lines = log.read_text().splitlines()
                snapshot = await graph.aget_state(config)
                # Checkpoints are saved in the background: wait for the parallel round's own.
                finished = [t for t in snapshot.tasks if t.name == "run_step" and t.result]
                if "slow" in lines and finished:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"the worker never reached the parallel steps: {log.read_text()}")
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            assert worker.returncode == -signal.SIGKILL
            assert log.read_text().splitlines().count("model") == 1  # the plan call only

            model = PlannerModel(synthesis="Combined: alpha and slow.")
            workers = Workers()
            context = Context(
                llm=model.llm,
                approval="never",
                failure_policy="continue",
                capabilities=workers.all("alpha", "slow", "beta"),
            )
            result = await graph.ainvoke(None, config, context=context)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)

    assert result["status"] == "completed"
    assert result["answer"] == "Combined: alpha and slow."
    # alpha finished before the kill: not run again; the plan was not asked for again.
    assert workers.calls == {"slow": 1, "beta": 1}
    assert model.kinds == {"synthesis": 1}
    assert result["results"]["s1"]["text"] == "alpha finished"
    assert result["results"]["s2"]["text"] == "slow did: long part"
