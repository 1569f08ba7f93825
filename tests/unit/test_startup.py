"""Starting MAI: empty values are unset, and every start error is one line with exit code 2,
exactly as the README's table of start errors says. The CLI runs in-process (typer's runner)
except where a real server process is the point."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import Settings, StartupError, load_settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# The same grammar as tests/observability/test_deployment.py reads compose files with.
_COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No MAI_* from the developer's shell, no .env from the repo: a fresh directory."""
    for name in list(os.environ):
        if name.startswith("MAI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def _documented_errors() -> dict[str, re.Pattern[str]]:
    """The README's start-error table: case name -> the printed line, `<...>` = any text."""
    section = README.read_text().split("## Starting and stopping", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, re.Pattern[str]] = {}
    for line in section.splitlines():
        match = re.fullmatch(r"\| ([^|`]+) \| ``(.+)`` \|", line.strip())
        if match is None:
            continue
        parts = re.split(r"<[^>]+>", match.group(2).strip())
        rows[match.group(1).strip()] = re.compile(".+".join(re.escape(p) for p in parts))
    return rows


def _one_line(runner_result: object) -> str:
    stderr = str(getattr(runner_result, "stderr", ""))
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def _run(*args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, _one_line(result)


def test_readme_documents_every_start_error() -> None:
    assert set(_documented_errors()) == {
        "Misconfiguration",
        "Database unreachable",
        "Schema behind the code",
        "Data dir used by another server",
        "Several workers on the embedded store",
        "Memory store built for another embedding size",
        "MCP servers file with a mistake",
        "Two MCP servers with one name",
    }


def test_misconfiguration(clean_env: Path) -> None:
    for command in (["serve"], ["migrate"], ["create-admin", "a@example.com"]):
        code, line = _run(*command, MAI_DATABASE_URL="mysql://x")
        assert code == 2
        assert _documented_errors()["Misconfiguration"].fullmatch(line), line
        assert line.startswith("configuration error: MAI_DATABASE_URL:")


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["create-admin", "a@example.com"]])
def test_database_unreachable(clean_env: Path, command: list[str]) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    code, line = _run(*command, MAI_DATABASE_URL="postgresql://mai:secret@127.0.0.1:1/mai")
    assert code == 2
    assert _documented_errors()["Database unreachable"].fullmatch(line), line
    assert "127.0.0.1:1/mai" in line
    assert "secret" not in line


def test_schema_behind(clean_env: Path) -> None:
    code, line = _run("serve", MAI_AUTO_MIGRATE="false")
    assert code == 2
    assert _documented_errors()["Schema behind the code"].fullmatch(line), line


def test_data_dir_used_by_another_server(clean_env: Path) -> None:
    # Another server's hold on the data dir: the lock on its embedded vector store.
    import fcntl

    (clean_env / "data").mkdir(parents=True)
    with (clean_env / "data" / "vectors.lock").open("a+") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, line = _run("serve")
    assert code == 2
    assert _documented_errors()["Data dir used by another server"].fullmatch(line), line
    assert str((clean_env / "data").resolve()) in line


def test_several_workers_on_the_embedded_store(clean_env: Path) -> None:
    for args, env in ((["serve", "--workers", "3"], {}), (["serve"], {"MAI_WORKERS": "2"})):
        code, line = _run(*args, **env)
        assert code == 2
        assert _documented_errors()["Several workers on the embedded store"].fullmatch(line), line


def test_memory_store_built_for_another_embedding_size(clean_env: Path) -> None:
    import asyncio
    from contextlib import AsyncExitStack
    from datetime import UTC, datetime

    from app.core.store import open_memory_store
    from graphs.memory import MemoryBook
    from tests.kb.support import HashEmbedder

    async def remember_with_64_dimensions() -> None:
        embedder = HashEmbedder(size=64)
        async with AsyncExitStack() as stack:
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
            store = await open_memory_store(settings, stack, embedder.embed, 64)
            await MemoryBook(store, "u").add("My dog is called Rex", now=datetime.now(UTC))

    asyncio.run(remember_with_64_dimensions())
    # An embedding model declaring 32 dimensions (read from the setting: no server is asked).
    code, line = _run(
        "serve",
        MAI_EMBEDDING_PROVIDER="openai",
        MAI_EMBEDDING_BASE_URL="http://127.0.0.1:1/v1",
        MAI_EMBEDDING_DIMENSIONS="32",
    )
    assert code == 2
    documented = _documented_errors()["Memory store built for another embedding size"]
    assert documented.fullmatch(line), line
    assert "holds 64-dimensional vectors" in line
    assert "gives 32" in line
    assert str((clean_env / "data" / "memory.db").resolve()) in line


@pytest.mark.parametrize(
    ("servers", "row", "expected"),
    [
        (
            [{"name": "files", "transport": "stdio"}],
            "MCP servers file with a mistake",
            "servers[0] (files): a stdio server needs `command`",
        ),
        (
            [{"name": "t", "transport": "sse", "url": "http://h/sse", "timeout_seconds": -1}],
            "MCP servers file with a mistake",
            "servers[0] (t).timeout_seconds: Input should be greater than 0",
        ),
        (
            [
                {
                    "name": "t",
                    "transport": "streamable_http",
                    "url": "http://h/mcp",
                    "headers": {"Authorization": {"env": "MAI_TEST_UNSET_TOKEN"}},
                }
            ],
            "MCP servers file with a mistake",
            "servers[0] (t).Authorization: the environment variable MAI_TEST_UNSET_TOKEN is "
            "not set",
        ),
        (
            [
                {"name": "files", "transport": "stdio", "command": "x"},
                {"name": "files", "transport": "sse", "url": "http://h/sse"},
            ],
            "Two MCP servers with one name",
            "servers[1] (files): another server has this name, so their tools would collide "
            "as files__<tool>; rename one",
        ),
    ],
)
def test_a_malformed_mcp_servers_file(
    clean_env: Path, servers: list[dict[str, object]], row: str, expected: str
) -> None:
    path = clean_env / "mcp.yaml"
    path.write_text(json.dumps({"servers": servers}))
    code, line = _run("serve", MAI_MCP_SERVERS_FILE=str(path))
    assert code == 2
    assert _documented_errors()[row].fullmatch(line), line
    assert line == f"configuration error: MAI_MCP_SERVERS_FILE: {expected}"


def test_debug_log_level_shows_the_traceback(clean_env: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["migrate"],
        env={"MAI_DATABASE_URL": "postgresql://127.0.0.1:1/mai", "MAI_LOG_LEVEL": "debug"},
    )
    assert isinstance(result.exception, StartupError)
    assert result.exit_code != 0


def test_empty_values_are_unset(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAI_AUTO_MIGRATE", "MAI_ADMIN_EMAIL", "MAI_ADMIN_PASSWORD", "MAI_WORKERS"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("MAI_QDRANT_URL", "   ")
    settings = load_settings()
    assert settings.auto_migrate is None
    assert settings.admin_email is None
    assert settings.admin_password is None
    assert settings.workers == 1
    assert settings.qdrant_url is None
    # Keyword arguments follow the same rule.
    assert Settings(_env_file=None, smtp_url="", port="").port == 8000  # type: ignore[call-arg]


def test_env_example_copied_as_is_is_valid(clean_env: Path) -> None:
    shutil.copy(ROOT / ".env.example", clean_env / ".env")
    settings = load_settings()
    assert settings.admin_email is None
    assert settings.workers == 1
    assert settings.port == 8000
    code = CliRunner().invoke(cli, ["migrate"]).exit_code
    assert code == 0
    assert (clean_env / "data" / "mai.db").exists()


def test_compose_environment_without_admin_variables(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    environment = compose["services"]["api"]["environment"]
    required = {"POSTGRES_PASSWORD": "pg-secret", "MAI_JWT_SECRET": "j" * 40}

    def substitute(value: str) -> str:
        # What compose does with only the required variables set: `${X:-d}` -> d.
        return _COMPOSE_VARIABLE.sub(
            lambda m: required.get(m.group(1), m.group(3) if m.group(2) == "-" else ""),
            value,
        )

    for name, value in environment.items():
        if name.startswith("MAI_") or name.startswith("LANGFUSE_"):
            monkeypatch.setenv(name, substitute(str(value)))
    settings = load_settings()
    assert settings.admin_email is None
    assert settings.uses_postgres
    assert settings.workers == 2
    assert settings.tracing_enabled is False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server_from_env_example(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`cp .env.example .env && mai serve` in a fresh directory, port from MAI_PORT."""
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAI_")}
    environ["MAI_PORT"] = str(port)
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        cwd=tmp_path,
        env=environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_env_example_starts_the_server(
    server_from_env_example: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = server_from_env_example
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail("the server did not become ready")
