"""Parsing and chunking of one document in a child process with memory and wall-clock limits.

A hostile or merely huge file can make a parser allocate gigabytes or loop for minutes. Doing
that work in a short-lived child keeps the service process (its event loop, its memory) out of
reach: the child runs under an address-space limit, is killed at the deadline or when the
ingestion is cancelled, and only the finished chunks travel back.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from app.services.kb.chunking import Chunk, Chunker, token_counter_for
from app.services.kb.errors import IngestError
from app.services.kb.parsing import parse

# Imported once in the fork server, so every parse child starts without importing them again.
_PRELOAD = ["app.services.kb.isolation", "bs4", "markdown_it", "pypdf", "docx", "tokenizers"]
_POLL_MAX_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """What one document's parse may use: memory, time, and how much text it may yield."""

    max_memory_mb: int
    timeout_seconds: float
    max_text_chars: int
    max_unpacked_bytes: int


@dataclass(frozen=True, slots=True)
class ChunkingSpec:
    """How to build the chunker in the child (the tokenizer is loaded there, from a file)."""

    model_path: Path | None
    max_tokens: int
    overlap: int
    min_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    """A parsed and chunked document, with what the parse cost."""

    title: str | None
    page_count: int | None
    chunks: list[Chunk]
    peak_rss_bytes: int
    seconds: float


def parse_and_chunk(
    data: bytes, kind: str, limits: ParseLimits, spec: ChunkingSpec, title: str | None = None
) -> ParseOutcome:
    """Parse and chunk a document in this process (the child's work; no limits enforced here).

    The document's own title (HTML title, PDF/DOCX metadata, first heading) goes first in every
    chunk's context; `title` is used when it has none.
    """
    import resource

    started = time.perf_counter()
    parsed = parse(
        data,
        kind,
        max_unpacked_bytes=limits.max_unpacked_bytes,
        max_text_chars=limits.max_text_chars,
    )
    chunker = Chunker(
        token_counter_for(spec.model_path), spec.max_tokens, spec.overlap, spec.min_tokens
    )
    _, chunks = chunker.split(parsed.blocks, parsed.title or title)
    if not chunks:
        raise IngestError("no_text", "No text could be extracted from this document.")
    # ru_maxrss is in kilobytes on Linux.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return ParseOutcome(
        title=parsed.title,
        page_count=parsed.page_count,
        chunks=chunks,
        peak_rss_bytes=peak,
        seconds=time.perf_counter() - started,
    )


def _memory_error(limits: ParseLimits) -> tuple[str, str, str]:
    return (
        "error",
        "parse_memory_limit",
        f"Parsing the document needed more than {limits.max_memory_mb} MB of memory "
        "(MAI_KB_PARSE_MAX_MEMORY_MB); split it into smaller files or raise the limit.",
    )


def _child_main(
    connection: Connection,
    data: bytes,
    kind: str,
    limits: ParseLimits,
    spec: ChunkingSpec,
    title: str | None,
) -> None:
    """Entry point of the parse child: set the limits, do the work, send back one message."""
    import resource

    # One thread: the tokenizer's thread pool would multiply the address space the limit counts.
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    limit = limits.max_memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    message: tuple[Any, ...]
    try:
        message = ("ok", parse_and_chunk(data, kind, limits, spec, title))
    except IngestError as error:
        message = ("error", error.code, error.reason)
    except MemoryError:
        message = _memory_error(limits)
    except Exception as error:  # a parser bug: report it instead of dying silently
        message = (
            "error",
            "ingest_error",
            f"Parsing failed unexpectedly ({type(error).__name__}); reindex to retry, and "
            "report it if it fails again.",
        )
    del data
    try:
        connection.send(message)
    except MemoryError:
        connection.send(_memory_error(limits))
    finally:
        connection.close()


def _context() -> multiprocessing.context.BaseContext:
    """The fork server where available (cheap, clean children), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


async def parse_isolated(
    data: bytes, kind: str, limits: ParseLimits, spec: ChunkingSpec, title: str | None = None
) -> ParseOutcome:
    """Parse and chunk a document in a child process under the limits.

    Raises IngestError naming the limit when the child runs out of memory
    (`parse_memory_limit`) or time (`parse_timeout`). Cancelling the call kills the child at
    once.
    """
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(  # type: ignore[attr-defined]
        target=_child_main,
        args=(sender, data, kind, limits, spec, title),
        name="mai-kb-parse",
        daemon=True,
    )
    starting = asyncio.ensure_future(asyncio.to_thread(process.start))
    try:
        try:
            await asyncio.shield(starting)
        finally:
            # Even when cancelled meanwhile, wait for the start so the child can be killed.
            with contextlib.suppress(BaseException):
                await starting
            sender.close()
        message = await _receive(receiver, process, limits)
    finally:
        if process.pid is not None:
            if process.exitcode is None:
                process.kill()
            await asyncio.to_thread(process.join, 5)
            with contextlib.suppress(ValueError):
                process.close()
        receiver.close()
    if message[0] == "ok":
        outcome: ParseOutcome = message[1]
        return outcome
    raise IngestError(message[1], message[2])


async def _receive(receiver: Connection, process: Any, limits: ParseLimits) -> tuple[Any, ...]:
    """The child's one message; IngestError at the deadline or when the child dies silently."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.timeout_seconds
    delay = 0.002
    while not receiver.poll():
        if process.exitcode is not None and not receiver.poll():
            return _crashed(process.exitcode, limits)
        if loop.time() >= deadline:
            raise IngestError(
                "parse_timeout",
                f"Parsing the document took longer than {limits.timeout_seconds:g} seconds "
                "(MAI_KB_PARSE_TIMEOUT_SECONDS) and was stopped; split it into smaller files "
                "or raise the limit.",
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, _POLL_MAX_SECONDS)
    try:
        message: tuple[Any, ...] = receiver.recv()
    except (EOFError, OSError):
        await asyncio.to_thread(process.join, 5)
        return _crashed(process.exitcode, limits)
    return message


def _crashed(exitcode: int | None, limits: ParseLimits) -> tuple[str, str, str]:
    """The message for a child that died without answering (native code hitting the limit)."""
    if exitcode is not None and exitcode < 0:
        # Native code (the tokenizer, lxml) aborts on a failed allocation instead of raising.
        status, code, reason = _memory_error(limits)
        return (status, code, f"{reason[:-1]} (the parser was stopped by signal {-exitcode}).")
    return (
        "error",
        "ingest_error",
        f"The parser stopped without a result (exit code {exitcode}); reindex to retry, "
        "and report it if it fails again.",
    )
