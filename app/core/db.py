"""The app database: engine and sessions for SQLite (embedded) or PostgreSQL, and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings, StartupError

if TYPE_CHECKING:
    from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_DIR = PROJECT_ROOT / "alembic"
# The newest migration. A database already stamped with it needs no Alembic at start: loading
# Alembic and every migration script is about 0.3 s of each start. A test checks this against
# Alembic's own head, so a new migration updates it.
SCHEMA_HEAD = "0020_tool_settings"


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the async engine; SQLite gets WAL, foreign keys and a busy timeout."""
    url = settings.effective_database_url
    if settings.uses_postgres:
        return create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_pool_size,
            pool_pre_ping=True,
        )
    path = settings.sqlite_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def alembic_config(url: str | None = None) -> Config:
    """The Alembic configuration of this project, independent of the working directory."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    _collapse_old_heads(connection, config)
    command.upgrade(config, revision)


def _collapse_old_heads(connection: Connection, config: Config) -> None:
    """Databases migrated while the history still had one branch per feature are stamped with
    several revisions that are now one line; keep only the newest so upgrades can go on."""
    from alembic.script import ScriptDirectory

    from alembic import command

    current = _current_heads(connection)
    if len(current) < 2:
        return
    script = ScriptDirectory.from_config(config)
    newest = [
        rev
        for rev in current
        if not any(
            rev != other and rev in {r.revision for r in script.iterate_revisions(other, "base")}
            for other in current
        )
    ]
    if len(newest) == 1:
        command.stamp(config, newest[0], purge=True)


def _downgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


def _current_heads(connection: Connection) -> set[str]:
    """The revisions the database is stamped with (none for a new database), read without
    loading Alembic."""
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


async def _stamped(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(_current_heads)


async def upgrade_schema(engine: AsyncEngine, revision: str = "heads") -> None:
    """Run the Alembic migrations up to `revision` on this engine."""
    if revision in ("head", "heads") and await _stamped(engine) == {SCHEMA_HEAD}:
        return
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def downgrade_schema(engine: AsyncEngine, revision: str = "base") -> None:
    """Run the Alembic migrations down to `revision` on this engine."""
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, revision)


async def pending_migrations(engine: AsyncEngine) -> set[str]:
    """Head revisions the database has not reached yet (empty when up to date)."""
    from alembic.script import ScriptDirectory

    current = await _stamped(engine)
    if current == {SCHEMA_HEAD}:
        return set()
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    return heads - current


async def ping(engine: AsyncEngine) -> None:
    """Round-trip a trivial query; raises when the database is not reachable."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def is_database_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached (down, restarting, refusing, a dead
    pooled connection), as opposed to a bug or bad data: such errors answer 503."""
    import sqlite3

    from sqlalchemy import exc as sa_exc

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if isinstance(current, OSError) and current.errno is not None:
            return True
        if isinstance(current, sqlite3.OperationalError):
            message = str(current).lower()
            if "locked" in message or "unable to open" in message or "disk i/o" in message:
                return True
        name = type(current).__name__
        module = type(current).__module__
        if module.startswith("asyncpg") and (
            "Connection" in name or name in {"CannotConnectNowError", "AdminShutdownError"}
        ):
            return True
        if module.startswith("psycopg") and name in {"OperationalError", "InterfaceError"}:
            return True
        if isinstance(current, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        current = current.__cause__ or current.__context__
    return False


class DatabaseUnavailable(StartupError):
    """The configured database cannot be reached (down, wrong address or credentials)."""

    label = "database error"


class SchemaOutOfDate(StartupError):
    """The database has not been migrated to this version of MAI."""

    label = "database error"


def _reason(error: BaseException) -> str:
    """The driver's own words, first line only (asyncpg and SQLAlchemy add pages of context)."""
    cause = getattr(error, "orig", None) or error
    text_ = str(cause).strip() or type(cause).__name__
    return text_.splitlines()[0]


async def check_database(engine: AsyncEngine, settings: Settings) -> None:
    """Connect once; a database that cannot be reached becomes one line naming the URL."""
    try:
        await ping(engine)
    except (OSError, DBAPIError) as error:
        where = make_url(settings.effective_database_url).render_as_string(hide_password=True)
        raise DatabaseUnavailable(
            f"cannot reach the database at {where} ({_reason(error)}): "
            "check that it runs and the database exists, or fix MAI_DATABASE_URL"
        ) from error


async def require_current_schema(engine: AsyncEngine) -> None:
    """Refuse to run on a schema older than this code (PostgreSQL is migrated explicitly)."""
    missing = await pending_migrations(engine)
    if missing:
        raise SchemaOutOfDate(
            "the database schema is behind this version of MAI "
            f"(missing {', '.join(sorted(missing))}): run `mai migrate`"
        )
