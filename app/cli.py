"""The `mai` command line: serve, worker, migrate, create-admin, ingest, prune, kb.

Only typer is imported up front: every command imports what it uses, so `mai --help` and a
misconfigured start answer at once instead of after loading the whole service.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from app.core.config import Settings

cli = typer.Typer(help="MAI: a production backend for LangGraph agents.", no_args_is_help=True)


def _debug(settings: Settings | None) -> bool:
    """Tracebacks are for MAI_LOG_LEVEL=debug; everyone else gets the one line."""
    if settings is not None:
        return settings.log_level == "DEBUG"
    return os.environ.get("MAI_LOG_LEVEL", "").strip().upper() == "DEBUG"


@contextmanager
def _start_errors(settings: Settings | None = None) -> Iterator[None]:
    """Print a StartupError as `<kind>: <what to do>` and exit with code 2."""
    from app.core.config import StartupError

    try:
        yield
    except StartupError as error:
        if _debug(settings):
            raise
        typer.echo(f"{error.label}: {error.line}", err=True)
        raise typer.Exit(2) from None


def _settings() -> Settings:
    from app.core.config import load_settings

    with _start_errors():
        return load_settings()


def _prepare_metrics_dir(workers: int) -> None:
    """Give several workers one fresh PROMETHEUS_MULTIPROC_DIR so /metrics merges them all."""
    import tempfile

    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        os.makedirs(configured, exist_ok=True)
        return
    if workers <= 1:
        return
    # Fresh per start: samples of a previous run's dead workers must not be merged in.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mai-metrics-")


async def _check_start(settings: Settings) -> None:
    """Open and close what the server opens at start, so that a database that is down or
    behind, a data dir held by another process, or a memory store built for another embedding
    size, is reported here as one line rather than as a traceback from the server's lifespan."""
    from app.core.resources import close_resources, open_resources
    from app.services.memory import check_memory_dimension

    await close_resources(await open_resources(settings))
    await check_memory_dimension(settings)


@cli.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind [default: MAI_HOST or 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on [default: MAI_PORT or 8000]")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes [default: MAI_WORKERS or 1]")
    ] = None,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Run the API server (web console at /, API docs at /docs)."""
    from app.core.config import ConfigError
    from app.core.logging import configure_logging

    settings = _settings()
    # Before anything else logs, so the start checks' lines are in the configured format too.
    configure_logging(settings)
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    with _start_errors(settings):
        if workers > 1 and settings.qdrant_url is None:
            raise ConfigError(
                f"{workers} workers need MAI_QDRANT_URL: the embedded vector store in "
                "MAI_DATA_DIR opens in one process only; set MAI_QDRANT_URL (with "
                "MAI_DATABASE_URL and MAI_REDIS_URL), or run one worker (MAI_WORKERS=1)"
            )
        asyncio.run(_check_start(settings))
    if workers > 1 and not (settings.uses_postgres and settings.redis_url):
        from app.core.logging import get_logger

        get_logger("app.cli").warning(
            "workers_share_no_state",
            advice="several workers on the embedded SQLite database and in-process rate "
            "limits do not share state; set MAI_DATABASE_URL and MAI_REDIS_URL",
        )
    import uvicorn

    _prepare_metrics_dir(workers)
    from app.core.http_server import HeaderTimeoutH11Protocol

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_config=None,
        # X-Forwarded-For is honoured by the app, from MAI_TRUSTED_PROXIES only.
        proxy_headers=False,
        http=HeaderTimeoutH11Protocol,
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        # Request line and headers together: 64 KiB.
        h11_max_incomplete_event_size=64 * 1024,
    )


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "heads",
) -> None:
    """Upgrade the database schema (PostgreSQL or the embedded SQLite file)."""
    from app.core.db import check_database, create_engine, upgrade_schema

    settings = _settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await check_database(engine, settings)
            await upgrade_schema(engine, revision)
        finally:
            await engine.dispose()

    with _start_errors(settings):
        asyncio.run(run())
    typer.echo(f"database schema upgraded to {revision}")


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Argument(help="Email of the new admin")],
    full_name: Annotated[str | None, typer.Option(help="Display name")] = None,
    keep_password: Annotated[
        bool,
        typer.Option(
            "--keep-password", help="Promote an existing user without changing their password"
        ),
    ] = False,
) -> None:
    """Create an admin, or promote a user (with a new password unless --keep-password).

    The password is prompted for, or read from stdin when it is not a terminal.
    """
    from email_validator import EmailNotValidError, validate_email

    from app.core.db import check_database, create_engine, create_sessionmaker, upgrade_schema
    from app.core.errors import MAIError
    from app.core.security import hash_password
    from app.models import Role
    from app.repositories.refresh_tokens import RefreshTokenRepository
    from app.repositories.users import UserRepository
    from app.services.auth import check_new_password, create_user, normalise_email

    settings = _settings()
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        typer.echo(f"error: invalid email: {error}", err=True)
        raise typer.Exit(1) from None

    def read_password() -> str:
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Repeat password: ") != password:
                typer.echo("passwords do not match", err=True)
                raise typer.Exit(1)
            return password
        return sys.stdin.readline().rstrip("\r\n")

    async def run() -> str:
        engine = create_engine(settings)
        try:
            await check_database(engine, settings)
            if settings.should_auto_migrate:
                await upgrade_schema(engine)
            async with create_sessionmaker(engine)() as session:
                existing = await UserRepository(session).get_by_email(normalise_email(email))
                if existing is not None:
                    if not keep_password:
                        # Whoever registered the address chose that password: replace it.
                        password = read_password()
                        check_new_password(password, existing.email, settings)
                        existing.password_hash = await hash_password(
                            password, settings.bcrypt_rounds
                        )
                        await RefreshTokenRepository(session).revoke_user(
                            existing.id, datetime.now(UTC)
                        )
                    existing.role = Role.admin.value
                    existing.is_active = True
                    await session.commit()
                    kept = " (password kept)" if keep_password else " with a new password"
                    return f"promoted existing user {existing.email} to admin{kept}"
                user = await create_user(
                    session,
                    settings,
                    email=email,
                    password=read_password(),
                    full_name=full_name,
                    role=Role.admin,
                )
                await session.commit()
                return f"created admin {user.email}"
        finally:
            await engine.dispose()

    try:
        with _start_errors(settings):
            typer.echo(asyncio.run(run()))
    except MAIError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None


def _files_under(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every file named or inside a named folder (recursively, hidden files skipped), sorted."""
    files: list[Path] = []
    missing: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            missing.append((path, "no such file or folder"))
    return list(dict.fromkeys(files)), missing


@cli.command()
def ingest(
    user: Annotated[str, typer.Option("--user", help="Email of the user who will own them")],
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (searched recursively)")
    ] = None,
    collection: Annotated[str | None, typer.Option(help="Collection to put them in")] = None,
    tags: Annotated[
        list[str] | None, typer.Option(help="Tags (repeat the option or comma-separate)")
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed", help="Also index again the user's documents that failed before"
        ),
    ] = False,
) -> None:
    """Load documents into a user's knowledge base, with progress and a summary of failures.

    With --retry-failed, the user's documents in failed status are parsed and indexed again
    from their stored files first (after a limit was raised or a bug fixed).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from app.core.errors import Conflict, MAIError
    from app.core.resources import close_resources, open_resources
    from app.models import DocumentStatus
    from app.repositories.kb_documents import KBDocumentRepository
    from app.repositories.users import UserRepository
    from app.services.auth import normalise_email
    from app.services.kb.service import Upload, open_knowledge_base

    if not paths and not retry_failed:
        typer.echo("error: give files or folders to ingest, or --retry-failed", err=True)
        raise typer.Exit(2)
    settings = _settings()
    console = Console(stderr=True)
    files, failures = _files_under(paths or [])
    skipped: list[tuple[Path, str]] = []
    retried: list[int] = []

    async def run() -> tuple[int, int]:
        resources = await open_resources(settings)
        ready = chunks = 0
        try:
            async with resources.sessionmaker() as session:
                owner = await UserRepository(session).get_by_email(normalise_email(user))
            if owner is None:
                raise MAIError(f"no user with email {user}: create the account first")
            kb = await open_knowledge_base(resources, worker=False)
            if retry_failed:
                async with resources.sessionmaker() as session:
                    failed = await KBDocumentRepository(session).failed(owner.id)
                for document_id in failed:
                    async with resources.sessionmaker() as session:
                        document = await kb.reindex(session, owner.id, document_id)
                        name = document.filename
                    done = await kb.process(document_id)
                    if done is not None and done.status == DocumentStatus.ready.value:
                        retried.append(1)
                        ready += 1
                        chunks += done.chunk_count
                    else:
                        failures.append(
                            (Path(name), (done.error or "unknown") if done else "not processed")
                        )
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("ingesting", total=len(files))
                for path in files:
                    progress.update(task, description=path.name[:40])
                    try:
                        data = path.read_bytes()
                        async with resources.sessionmaker() as session:
                            document = await kb.upload(
                                session,
                                owner.id,
                                Upload(path.name, data, tags=tags or [], collection=collection),
                                enqueue=False,
                            )
                        done = await kb.process(document.id)
                        if done is None or done.status != DocumentStatus.ready.value:
                            failures.append(
                                (path, (done.error or "unknown") if done else "not processed")
                            )
                        else:
                            ready += 1
                            chunks += done.chunk_count
                    except Conflict as error:
                        skipped.append((path, error.detail))
                    except MAIError as error:
                        failures.append((path, error.detail))
                    except OSError as error:
                        failures.append((path, f"cannot read the file: {error.strerror}"))
                    progress.advance(task)
        finally:
            await close_resources(resources)
        return ready, chunks

    try:
        with _start_errors(settings):
            ready, chunks = asyncio.run(run())
    except MAIError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{ready} document(s) indexed ({chunks} chunks), {len(skipped)} already present, "
        f"{len(failures)} failed"
        + (f", {len(retried)} failed document(s) retried successfully" if retry_failed else "")
    )
    if skipped or failures:
        table = Table("file", "result", "why", show_lines=False)
        for path, why in skipped:
            table.add_row(str(path), "skipped", why)
        for path, why in failures:
            table.add_row(str(path), "[red]failed[/red]", why)
        Console().print(table)
    if failures:
        raise typer.Exit(1)


@cli.command()
def worker() -> None:
    """Run the run engine's workers alone (no HTTP): claim queued runs from the shared
    PostgreSQL database and execute them, until SIGTERM or Ctrl-C."""
    import signal

    from app.main import create_app

    settings = _settings()
    if not settings.uses_postgres:
        typer.echo(
            "error: `mai worker` shares runs with `mai serve` through PostgreSQL; set "
            "MAI_DATABASE_URL (the embedded default runs its workers inside `mai serve`)",
            err=True,
        )
        raise typer.Exit(2)
    if not settings.run_workers_enabled:
        typer.echo("error: MAI_RUN_WORKERS_ENABLED is false; nothing to run", err=True)
        raise typer.Exit(2)
    app = create_app(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        # The same lifespan as the server: resources, graphs, approvals, and the worker.
        async with app.router.lifespan_context(app):
            typer.echo("mai worker started", err=True)
            await stop.wait()

    asyncio.run(run())


@cli.command()
def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be removed; remove nothing")
    ] = False,
) -> None:
    """Remove old checkpoints, idle conversations and expired tokens now (what the server's
    background sweeper does), and print what was removed."""
    from app.core.clock import SystemClock
    from app.core.db import (
        check_database,
        create_engine,
        create_sessionmaker,
        require_current_schema,
        upgrade_schema,
    )
    from app.services.retention import Retention

    settings = _settings()

    async def run() -> list[str]:
        engine = create_engine(settings)
        try:
            await check_database(engine, settings)
            if settings.should_auto_migrate:
                await upgrade_schema(engine)
            else:
                await require_current_schema(engine)
            retention = Retention(settings, engine, create_sessionmaker(engine), SystemClock())
            return (await retention.run(dry_run=dry_run)).lines()
        finally:
            await engine.dispose()

    with _start_errors(settings):
        for line in asyncio.run(run()):
            typer.echo(line)


kb_cli = typer.Typer(help="Knowledge-base maintenance.", no_args_is_help=True)
cli.add_typer(kb_cli, name="kb")


@kb_cli.command("migrate-store")
def kb_migrate_store() -> None:
    """Move vectors kept in Qdrant local mode into the embedded engine (no re-embedding)."""
    from app.core.errors import MAIError
    from app.core.resources import close_resources, open_resources
    from app.services.kb.service import open_knowledge_base

    settings = _settings()
    if settings.qdrant_url:
        typer.echo("MAI_QDRANT_URL is set: the vectors live on that server, nothing to move.")
        return

    async def run() -> tuple[int, str]:
        resources = await open_resources(settings)
        try:
            # Opening the index moves what local mode holds for the configured model.
            kb = await open_knowledge_base(resources, worker=False)
            index = await kb.index()
            return kb.migrated_points, str(settings.kb_vectors_path / index.name)
        finally:
            await close_resources(resources)

    try:
        moved, where = asyncio.run(run())
    except MAIError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{moved} point(s) moved from Qdrant local mode into {where}")


@kb_cli.command("eval")
def kb_eval(
    file: Annotated[Path, typer.Argument(help="JSONL: question, and document and/or passage")],
    user: Annotated[str, typer.Option("--user", help="Email of the user whose KB to search")],
    rerank: Annotated[
        bool, typer.Option(help="Also measure hybrid+rerank with the chat model (MAI_LLM_*)")
    ] = True,
) -> None:
    """Measure retrieval on your own questions: hit@1/5/10 and MRR for dense, sparse, hybrid
    and hybrid+rerank.

    Each line of FILE is {"question": ..., "document": id, title or file name, "passage":
    text the hit must contain}; give document, passage or both.
    """
    from rich.console import Console
    from rich.table import Table

    from app.core.errors import MAIError
    from app.core.llm import ChatModelProvider
    from app.core.resources import close_resources, open_resources
    from app.repositories.users import UserRepository
    from app.services.auth import normalise_email
    from app.services.kb.evaluation import KS, RUNS, EvalResult, Evaluator, load_questions
    from app.services.kb.rerank import LlmReranker, RerankCost
    from app.services.kb.service import open_knowledge_base

    settings = _settings()

    async def run() -> tuple[list[EvalResult], int, LlmReranker | None]:
        questions = load_questions(file)
        resources = await open_resources(settings)
        try:
            async with resources.sessionmaker() as session:
                owner = await UserRepository(session).get_by_email(normalise_email(user))
            if owner is None:
                raise MAIError(f"no user with email {user}")
            kb = await open_knowledge_base(resources, worker=False)
            runs = [r for r in RUNS if rerank or not r.rerank]
            reranker = None
            if rerank:
                reranker = LlmReranker(ChatModelProvider(settings, resources.http).model)
                kb.reranker = reranker
            results = await Evaluator(kb, owner.id).run(questions, runs)
            return results, len(questions), reranker
        finally:
            await close_resources(resources)

    try:
        with _start_errors(settings):
            results, count, reranker = asyncio.run(run())
    except MAIError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    table = Table("mode", *(f"hit@{k}" for k in KS), "MRR", title=f"{count} question(s)")
    for result in results:
        table.add_row(result.label, *(f"{result.hit_at(k):.3f}" for k in KS), f"{result.mrr:.3f}")
    Console(width=120).print(table)
    cost = RerankCost.of(reranker.calls) if reranker else None
    if cost is not None:
        typer.echo(cost.describe())
    failures = reranker.failures if reranker else 0
    if failures:
        typer.echo(
            f"note: {failures} rerank call(s) failed and kept the hybrid order "
            f"(chat model at {settings.llm_base_url}); hybrid+rerank is not a rerank measure",
            err=True,
        )


@kb_cli.command("reindex")
def kb_reindex(
    all_documents: Annotated[
        bool, typer.Option("--all", help="Every user's documents (ready or failed)")
    ] = False,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's documents")] = None,
) -> None:
    """Parse, chunk and index documents again with the current pipeline and settings.

    Needed after an upgrade that changes parsing or chunking, or a change of chunk size or
    embedding model. With the embedded Qdrant, stop the server first.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from app.core.errors import MAIError
    from app.core.resources import close_resources, open_resources
    from app.models import DocumentStatus
    from app.repositories.kb_documents import KBDocumentRepository
    from app.repositories.users import UserRepository
    from app.services.auth import normalise_email
    from app.services.kb.service import open_knowledge_base

    if all_documents == (user is not None):
        typer.echo("error: give either --all or --user EMAIL", err=True)
        raise typer.Exit(2)
    settings = _settings()
    console = Console(stderr=True)
    failures: list[tuple[str, str]] = []

    async def run() -> int:
        try:
            resources = await open_resources(settings)
        except RuntimeError as error:
            if "already accessed" in str(error):
                raise MAIError(
                    "the embedded Qdrant folder is in use by a running server: stop it, or "
                    "set MAI_QDRANT_URL to a Qdrant server shared by both"
                ) from None
            raise
        ready = 0
        try:
            async with resources.sessionmaker() as session:
                owner_id = None
                if user is not None:
                    owner = await UserRepository(session).get_by_email(normalise_email(user))
                    if owner is None:
                        raise MAIError(f"no user with email {user}")
                    owner_id = owner.id
                documents = await KBDocumentRepository(session).settled(owner_id)
            kb = await open_knowledge_base(resources, worker=False)
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("reindexing", total=len(documents))
                for document_id, owner_id in documents:
                    async with resources.sessionmaker() as session:
                        document = await kb.reindex(session, owner_id, document_id)
                        progress.update(task, description=document.title[:40])
                    done = await kb.process(document_id)
                    if done is not None and done.status == DocumentStatus.ready.value:
                        ready += 1
                    else:
                        failures.append(
                            (str(document_id), (done.error or "") if done else "not processed")
                        )
                    progress.advance(task)
        finally:
            await close_resources(resources)
        return ready

    try:
        ready = asyncio.run(run())
    except MAIError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{ready} document(s) reindexed, {len(failures)} failed")
    for document_id, reason in failures:
        typer.echo(f"  {document_id}: {reason}", err=True)
    if failures:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the `mai` script."""
    cli()


if __name__ == "__main__":
    main()
