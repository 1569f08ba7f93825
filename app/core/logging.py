"""Structured logging: JSON lines (or console) carrying the request/user/run context."""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.types import Processor

from app.core.config import Settings


def configure_logging(settings: Settings) -> None:
    """Route stdlib and structlog records through one renderer with bound context vars."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if settings.log_format == "console":
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # Our own access log carries the request id; uvicorn's would duplicate it without.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Python warnings become log records (one JSON line each) instead of raw multi-line text
    # on stderr.
    logging.captureWarnings(True)
    # Libraries that log every request or step at INFO: their warnings and errors still come
    # through, and all of it with MAI_LOG_LEVEL=DEBUG.
    quiet = logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
    for noisy in _CHATTY_LIBRARIES:
        logging.getLogger(noisy).setLevel(quiet)


_CHATTY_LIBRARIES = (
    "httpx",
    "httpcore",
    "aiosqlite",
    "asyncio",
    "openai",
    "urllib3",
    "qdrant_client",
    "fastembed",
    "huggingface_hub",
    "opentelemetry",
    "langfuse",
    "multipart",
    "alembic.runtime.migration",
)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger for a module."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


bind_context = structlog.contextvars.bind_contextvars


def current_request_id() -> str | None:
    """The request id bound to this task's log context (None outside a request)."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


"""Attach request_id, user_id, conversation_id, run_id to every log line of this task."""
