"""The `mai` command line: serve, migrate, create-admin, ingest."""

from __future__ import annotations

import asyncio
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from app.core.config import ConfigError, Settings, load_settings

cli = typer.Typer(help="MAI: a production backend for LangGraph agents.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        typer.echo(f"configuration error: {error.line}", err=True)
        raise typer.Exit(2) from None


def _prepare_metrics_dir(workers: int) -> None:
    """Give several workers one fresh PROMETHEUS_MULTIPROC_DIR so /metrics merges them all."""
    import os
    import tempfile

    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        os.makedirs(configured, exist_ok=True)
        return
    if workers <= 1:
        return
    # Fresh per start: samples of a previous run's dead workers must not be merged in.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mai-metrics-")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Run the API server (docs at /docs)."""
    import uvicorn

    settings = _settings()
    if workers > 1 and not settings.uses_postgres:
        typer.echo(
            "note: several workers on the embedded SQLite/Qdrant-local default share files; "
            "set MAI_DATABASE_URL, MAI_REDIS_URL and MAI_QDRANT_URL for multi-process serving",
            err=True,
        )
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
    from app.core.db import create_engine, upgrade_schema

    settings = _settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await upgrade_schema(engine, revision)
        finally:
            await engine.dispose()

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

    from app.core.db import create_engine, create_sessionmaker, upgrade_schema
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
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively)")],
    user: Annotated[str, typer.Option("--user", help="Email of the user who will own them")],
    collection: Annotated[str | None, typer.Option(help="Collection to put them in")] = None,
    tags: Annotated[
        list[str] | None, typer.Option(help="Tags (repeat the option or comma-separate)")
    ] = None,
) -> None:
    """Load documents into a user's knowledge base, with progress and a summary of failures."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from app.core.errors import Conflict, MAIError
    from app.core.resources import close_resources, open_resources
    from app.models import DocumentStatus
    from app.repositories.users import UserRepository
    from app.services.auth import normalise_email
    from app.services.kb.service import Upload, open_knowledge_base

    settings = _settings()
    console = Console(stderr=True)
    files, failures = _files_under(paths)
    skipped: list[tuple[Path, str]] = []

    async def run() -> tuple[int, int]:
        try:
            resources = await open_resources(settings)
        except RuntimeError as error:
            if "already accessed" in str(error):
                raise MAIError(
                    "the embedded Qdrant folder is in use by a running server: stop it, or "
                    "set MAI_QDRANT_URL to a Qdrant server shared by both"
                ) from None
            raise
        ready = chunks = 0
        try:
            async with resources.sessionmaker() as session:
                owner = await UserRepository(session).get_by_email(normalise_email(user))
            if owner is None:
                raise MAIError(f"no user with email {user}: create the account first")
            kb = await open_knowledge_base(resources, worker=False)
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
        ready, chunks = asyncio.run(run())
    except MAIError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{ready} document(s) indexed ({chunks} chunks), {len(skipped)} already present, "
        f"{len(failures)} failed"
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


def main() -> None:
    """Entry point of the `mai` script."""
    cli()


if __name__ == "__main__":
    main()
