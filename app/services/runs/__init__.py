"""The run engine: one run model, one executor, one queue for every graph and every API."""

from app.services.runs.engine import RunEngine, RunRequest, check_stream_modes, title_from
from app.services.runs.executor import DEFAULT_STREAM_MODES, STREAM_MODES, RunExecutor
from app.services.runs.jsonable import to_jsonable
from app.services.runs.worker import RunWorker

__all__ = [
    "DEFAULT_STREAM_MODES",
    "STREAM_MODES",
    "RunEngine",
    "RunExecutor",
    "RunRequest",
    "RunWorker",
    "check_stream_modes",
    "title_from",
    "to_jsonable",
]
