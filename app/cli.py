"""The `mai` command line: serve, migrate, create-admin."""

from __future__ import annotations

import asyncio
import getpass
import sys
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
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_config=None,
        proxy_headers=True,
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
) -> None:
    """Create an admin (or promote a user); the password is prompted for or read from stdin."""
    from email_validator import EmailNotValidError, validate_email

    from app.core.db import create_engine, create_sessionmaker, upgrade_schema
    from app.core.errors import MAIError
    from app.models import Role
    from app.repositories.users import UserRepository
    from app.services.auth import create_user, normalise_email

    settings = _settings()
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        typer.echo(f"error: invalid email: {error}", err=True)
        raise typer.Exit(1) from None
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            typer.echo("passwords do not match", err=True)
            raise typer.Exit(1)
    else:
        password = sys.stdin.readline().rstrip("\r\n")

    async def run() -> str:
        engine = create_engine(settings)
        try:
            if settings.should_auto_migrate:
                await upgrade_schema(engine)
            async with create_sessionmaker(engine)() as session:
                existing = await UserRepository(session).get_by_email(normalise_email(email))
                if existing is not None:
                    existing.role = Role.admin.value
                    await session.commit()
                    return f"promoted existing user {existing.email} to admin"
                user = await create_user(
                    session,
                    settings,
                    email=email,
                    password=password,
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


def main() -> None:
    """Entry point of the `mai` script."""
    cli()


if __name__ == "__main__":
    main()
