"""The `mai` command line, in-process through typer's runner (a real process where a terminal
is the point)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from app.cli import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data dir, and no MAI_* variables or .env from the developer's machine."""
    for name in list(os.environ):
        if name.startswith("MAI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAI_BCRYPT_ROUNDS", "4")
    return tmp_path / "data"


def _mai(args: list[str], stdin: str = "", **env: str) -> Result:
    return CliRunner().invoke(cli, args, input=stdin, env=env)


def test_migrate_then_create_admin_from_stdin(data_dir: Path) -> None:
    migrated = _mai(["migrate"])
    assert migrated.exit_code == 0, migrated.output
    assert (data_dir / "mai.db").exists()
    created = _mai(["create-admin", "Boss@Example.com"], stdin="Quiet-Harbour-71\n")
    assert created.exit_code == 0, created.output
    assert "created admin boss@example.com" in created.stdout
    again = _mai(["create-admin", "boss@example.com", "--keep-password"])
    assert again.exit_code == 0, again.output
    assert "promoted" in again.stdout


def test_promotion_keeping_the_password_does_not_ask_for_one(data_dir: Path) -> None:
    created = _mai(["create-admin", "boss@example.com"], stdin="Quiet-Harbour-71\n")
    assert created.exit_code == 0, created.output
    # On a terminal a password prompt would wait for input; the promotion must not prompt.
    controller, terminal = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    environ |= {"MAI_DATA_DIR": str(data_dir), "MAI_BCRYPT_ROUNDS": "4", "PYTHONPATH": str(ROOT)}
    try:
        promoted = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "create-admin",
                "boss@example.com",
                "--keep-password",
            ],
            stdin=terminal,
            capture_output=True,
            text=True,
            env=environ,
            cwd=data_dir.parent,
            timeout=120,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert promoted.returncode == 0, promoted.stderr
    assert "promoted existing user boss@example.com to admin" in promoted.stdout
    assert "Password" not in promoted.stdout + promoted.stderr


def test_create_admin_rejects_short_password(data_dir: Path) -> None:
    result = _mai(["create-admin", "boss@example.com"], stdin="short\n")
    assert result.exit_code == 1
    assert "at least 8 bytes" in result.stderr


def test_create_admin_rejects_bad_email(data_dir: Path) -> None:
    result = _mai(["create-admin", "not-an-email"], stdin="Quiet-Harbour-71\n")
    assert result.exit_code == 1
    assert "email" in result.stderr.lower()


@pytest.mark.parametrize("command", [["serve"], ["migrate"]])
def test_misconfiguration_is_one_line(data_dir: Path, command: list[str]) -> None:
    result = _mai(command, MAI_DATABASE_URL="mysql://x")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]]
    assert lines[0].startswith("configuration error: MAI_DATABASE_URL:")


def test_help_lists_every_command() -> None:
    result = _mai(["--help"])
    assert result.exit_code == 0
    for command in ("serve", "migrate", "create-admin", "ingest"):
        assert command in result.stdout


def test_promotion_sets_a_new_password_unless_asked_to_keep_it(data_dir: Path) -> None:
    import asyncio

    from app.core.config import Settings
    from app.core.db import create_engine, create_sessionmaker
    from app.core.security import verify_password
    from app.repositories.users import UserRepository

    created = _mai(["create-admin", "boss@example.com"], stdin="Quiet-Harbour-71\n")
    assert created.exit_code == 0, created.output
    kept = _mai(["create-admin", "boss@example.com", "--keep-password"])
    assert kept.exit_code == 0, kept.output
    assert "password kept" in kept.stdout
    replaced = _mai(["create-admin", "boss@example.com"], stdin="Silver-Kettle-58\n")
    assert replaced.exit_code == 0, replaced.output
    assert "new password" in replaced.stdout

    async def password_hash() -> str:
        settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
        engine = create_engine(settings)
        async with create_sessionmaker(engine)() as session:
            user = await UserRepository(session).get_by_email("boss@example.com")
            assert user is not None
            value = user.password_hash
        await engine.dispose()
        return value

    stored = asyncio.run(password_hash())
    assert asyncio.run(verify_password("Silver-Kettle-58", stored))
    assert not asyncio.run(verify_password("Quiet-Harbour-71", stored))
