"""The `mai` command line, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _mai(
    args: list[str], tmp_path: Path, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    environ |= {"MAI_DATA_DIR": str(tmp_path / "data"), "MAI_BCRYPT_ROUNDS": "4"} | env
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
        check=False,
    )


def test_migrate_then_create_admin_from_stdin(tmp_path: Path) -> None:
    migrated = _mai(["migrate"], tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "data" / "mai.db").exists()
    created = _mai(["create-admin", "Boss@Example.com"], tmp_path, stdin="a-good-password\n")
    assert created.returncode == 0, created.stderr
    assert "created admin boss@example.com" in created.stdout
    again = _mai(["create-admin", "boss@example.com"], tmp_path, stdin="a-good-password\n")
    assert "promoted" in again.stdout


def test_create_admin_rejects_short_password(tmp_path: Path) -> None:
    result = _mai(["create-admin", "boss@example.com"], tmp_path, stdin="short\n")
    assert result.returncode == 1
    assert "at least 8 bytes" in result.stderr


def test_create_admin_rejects_bad_email(tmp_path: Path) -> None:
    result = _mai(["create-admin", "not-an-email"], tmp_path, stdin="a-good-password\n")
    assert result.returncode == 1
    assert "email" in result.stderr.lower()


@pytest.mark.parametrize("command", [["serve"], ["migrate"]])
def test_misconfiguration_is_one_line(tmp_path: Path, command: list[str]) -> None:
    result = _mai(command, tmp_path, MAI_DATABASE_URL="mysql://x")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]]
    assert lines[0].startswith("configuration error: MAI_DATABASE_URL:")


def test_promotion_sets_a_new_password_unless_asked_to_keep_it(tmp_path: Path) -> None:
    import asyncio

    from app.core.config import Settings
    from app.core.db import create_engine, create_sessionmaker
    from app.core.security import verify_password
    from app.repositories.users import UserRepository

    assert _mai(["migrate"], tmp_path).returncode == 0
    created = _mai(["create-admin", "boss@example.com"], tmp_path, stdin="first-pass-1\n")
    assert created.returncode == 0, created.stderr
    kept = _mai(["create-admin", "boss@example.com", "--keep-password"], tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "password kept" in kept.stdout
    replaced = _mai(["create-admin", "boss@example.com"], tmp_path, stdin="second-pass-2\n")
    assert replaced.returncode == 0, replaced.stderr
    assert "new password" in replaced.stdout

    async def password_hash() -> str:
        settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
        engine = create_engine(settings)
        async with create_sessionmaker(engine)() as session:
            user = await UserRepository(session).get_by_email("boss@example.com")
            assert user is not None
            value = user.password_hash
        await engine.dispose()
        return value

    stored = asyncio.run(password_hash())
    assert asyncio.run(verify_password("second-pass-2", stored))
    assert not asyncio.run(verify_password("first-pass-1", stored))
